"""A small SOAP 1.1 service for connectors/tests/drivers.rs, built with spyne (not our code).

Usage: python3 soap_service.py  -> prints "PORT <n>" once it listens on 127.0.0.1:<n>.
Setup: pip install spyne lxml
"""
import sys
from decimal import Decimal as D
from wsgiref.simple_server import WSGIRequestHandler, make_server

from spyne import Application, Array, ComplexModel, Decimal, Fault, ServiceBase, Unicode, rpc
from spyne.protocol.soap import Soap11
from spyne.server.wsgi import WsgiApplication

TNS = "urn:kefu:test"


class Address(ComplexModel):
    __namespace__ = TNS
    City = Unicode


class Order(ComplexModel):
    __namespace__ = TNS
    OrderNo = Unicode
    Status = Unicode
    Total = Decimal
    Address = Address
    Note = Unicode


ORDERS = {
    "c1": [
        Order(OrderNo="00042", Status="shipped", Total=D("12.50"), Address=Address(City="Bonn"), Note=None),
        Order(OrderNo="43", Status="open", Total=D("7"), Address=Address(City="Köln"), Note="ring twice"),
    ],
}


class OrderService(ServiceBase):
    @rpc(Unicode, _returns=Array(Order))
    def GetOrders(ctx, customer):
        if customer not in ORDERS:
            raise Fault(faultcode="Client.NotFound", faultstring="no customer %s" % customer)
        return ORDERS[customer]

    @rpc(Unicode, _returns=Unicode)
    def Echo(ctx, text):
        return text


class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


app = Application([OrderService], tns=TNS, in_protocol=Soap11(validator="lxml"), out_protocol=Soap11())
server = make_server("127.0.0.1", 0, WsgiApplication(app), handler_class=Quiet)
print("PORT %d" % server.server_port, flush=True)
try:
    server.serve_forever()
except KeyboardInterrupt:
    sys.exit(0)
