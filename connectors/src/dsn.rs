//! Turns what a connector's `dsn` says into the sqlx URL its driver connects with.
//!
//! Accepted: a URL whose scheme fits the driver (`mysql://` or `mariadb://` for MySQL,
//! `postgres://` or `postgresql://`, `sqlite:`), a plain file path for SQLite, and the Go MySQL
//! driver's DSN `[user[:password]@][net[(addr)]]/dbname[?param=value&…]`, which many existing
//! configurations use. Error texts describe what is wrong without repeating the DSN: it usually
//! holds a password.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::model::DriverKind;

/// Go DSN parameters that only mean something to the Go driver; they are dropped.
const GO_ONLY: &[&str] = &[
    "allowAllFiles",
    "allowCleartextPasswords",
    "allowFallbackToPlaintext",
    "allowNativePasswords",
    "allowOldPasswords",
    "checkConnLiveness",
    "clientFoundRows",
    "columnsWithAlias",
    "interpolateParams",
    "loc",
    "maxAllowedPacket",
    "multiStatements",
    "parseTime",
    "readTimeout",
    "rejectReadOnly",
    "serverPubKey",
    "timeout",
    "writeTimeout",
];

/// The sqlx URL for `dsn` and `driver` (a SQL driver), or why there is none.
pub(crate) fn to_url(dsn: &str, driver: DriverKind) -> Result<String, String> {
    let dsn = dsn.trim();
    if dsn.is_empty() {
        return Err("the DSN is empty".to_owned());
    }
    if let Some(scheme) = url_scheme(dsn) {
        return from_url(dsn, &scheme, driver);
    }
    match driver {
        DriverKind::MySql => go_mysql(dsn),
        // A plain path; sqlx reads everything after `sqlite://` as the file's path.
        DriverKind::Sqlite => Ok(format!("sqlite://{dsn}")),
        DriverKind::Postgres => Err(
            "a postgres connector takes a URL: postgres://user:password@host:5432/database"
                .to_owned(),
        ),
        DriverKind::Http | DriverKind::Soap => Err(format!(
            "the {} driver takes `base_url`, not a DSN",
            driver.as_str()
        )),
    }
}

/// The scheme of `text` when it is a URL (`scheme:` then `//`, or `sqlite:`).
fn url_scheme(text: &str) -> Option<String> {
    let (scheme, rest) = text.split_once(':')?;
    let valid = scheme
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    let scheme = scheme.to_ascii_lowercase();
    (valid && (rest.starts_with("//") || scheme == "sqlite")).then_some(scheme)
}

fn from_url(url: &str, scheme: &str, driver: DriverKind) -> Result<String, String> {
    let fits = match driver {
        DriverKind::MySql => matches!(scheme, "mysql" | "mariadb"),
        DriverKind::Postgres => matches!(scheme, "postgres" | "postgresql"),
        DriverKind::Sqlite => scheme == "sqlite",
        DriverKind::Http | DriverKind::Soap => false,
    };
    if !fits {
        return Err(format!(
            "a `{scheme}:` URL does not fit the {} driver",
            driver.as_str()
        ));
    }
    if url.chars().any(char::is_whitespace) {
        return Err("the URL contains white space".to_owned());
    }
    if scheme == "sqlite" {
        return Ok(url.to_owned());
    }
    let rest = &url[scheme.len() + 3..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    if host.is_empty() {
        return Err("the URL names no host".to_owned());
    }
    // sqlx's MySQL driver reads `mysql://`; MariaDB speaks the same protocol.
    Ok(if scheme == "mariadb" {
        format!("mysql{}", &url[scheme.len()..])
    } else {
        url.to_owned()
    })
}

/// The Go MySQL driver's DSN, parsed the way that driver does: the database name follows the
/// last `/`, the credentials end at the last `@` before it, the user ends at the first `:`.
fn go_mysql(dsn: &str) -> Result<String, String> {
    let Some(slash) = dsn.rfind('/') else {
        return Err(
            "not a URL, and not a Go MySQL DSN (user:password@tcp(host:port)/database): the `/database` part is missing"
                .to_owned(),
        );
    };
    let (before, after) = (&dsn[..slash], &dsn[slash + 1..]);
    let (credentials, address) = match before.rfind('@') {
        Some(at) => (Some(&before[..at]), &before[at + 1..]),
        None => (None, before),
    };
    let (user, password) = match credentials {
        Some(c) => match c.split_once(':') {
            Some((user, password)) => (user, Some(password)),
            None => (c, None),
        },
        None => ("", None),
    };

    let (net, addr) = match address.find('(') {
        Some(open) => {
            if !address.ends_with(')') {
                return Err("the address in the DSN lacks its closing `)`".to_owned());
            }
            (&address[..open], &address[open + 1..address.len() - 1])
        }
        None => (address, ""),
    };
    let (host, socket) = match net {
        "" | "tcp" => {
            let host = if addr.is_empty() {
                "localhost:3306"
            } else {
                addr
            };
            (host, None)
        }
        "unix" => {
            if addr.is_empty() {
                return Err("`unix()` in the DSN needs the socket's path".to_owned());
            }
            ("localhost", Some(addr))
        }
        _ => {
            return Err(
                "the DSN's network must be `tcp(host:port)` or `unix(/path/to/socket)`".to_owned(),
            );
        }
    };
    if host
        .chars()
        .any(|c| c.is_whitespace() || matches!(c, '/' | '@' | '?' | '#' | '(' | ')'))
    {
        return Err("the DSN's host is not a host name or address".to_owned());
    }

    let (database, query) = after.split_once('?').unwrap_or((after, ""));
    let mut url = String::from("mysql://");
    if !user.is_empty() || password.is_some() {
        url.push_str(&encode(user));
        if let Some(password) = password {
            url.push(':');
            url.push_str(&encode(password));
        }
        url.push('@');
    }
    url.push_str(host);
    url.push('/');
    url.push_str(&encode(database));

    let mut params = Vec::new();
    if let Some(socket) = socket {
        params.push(format!("socket={}", encode(socket)));
    }
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if GO_ONLY.contains(&key) {
            continue;
        }
        // The Go driver's names for what sqlx calls otherwise.
        let (key, value) = match (key, value) {
            ("tls", "true" | "skip-verify") => ("ssl-mode", "required"),
            ("tls", "preferred") => ("ssl-mode", "preferred"),
            ("tls", "false") => ("ssl-mode", "disabled"),
            ("tls", _) => {
                return Err(
                    "the DSN's `tls` must be true, false, skip-verify or preferred".to_owned(),
                );
            }
            // Go allows a list of character sets to try; sqlx takes one.
            ("charset", list) => ("charset", list.split(',').next().unwrap_or_default()),
            other => other,
        };
        params.push(format!("{key}={value}"));
    }
    if !params.is_empty() {
        url.push('?');
        url.push_str(&params.join("&"));
    }
    Ok(url)
}

/// Everything but the characters RFC 3986 leaves unreserved.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn encode(text: &str) -> String {
    utf8_percent_encode(text, COMPONENT).to_string()
}

#[cfg(test)]
mod tests {
    use super::to_url;
    use crate::model::DriverKind::{MySql, Postgres, Sqlite};

    #[test]
    fn go_dsns_become_urls() {
        let cases = [
            (
                "user:s3cret@tcp(10.0.0.1:3306)/erp",
                "mysql://user:s3cret@10.0.0.1:3306/erp",
            ),
            (
                "user:p@ss:w/rd@tcp(db:3306)/erp?parseTime=true&charset=utf8mb4,utf8&tls=true",
                "mysql://user:p%40ss%3Aw%2Frd@db:3306/erp?charset=utf8mb4&ssl-mode=required",
            ),
            ("user@tcp(db)/erp", "mysql://user@db/erp"),
            ("/erp", "mysql://localhost:3306/erp"),
            ("tcp(db:3307)/erp", "mysql://db:3307/erp"),
            (
                "root:pw@unix(/var/run/mysqld/mysqld.sock)/erp",
                "mysql://root:pw@localhost/erp?socket=%2Fvar%2Frun%2Fmysqld%2Fmysqld.sock",
            ),
            ("u:@tcp(h:1)/d", "mysql://u:@h:1/d"),
        ];
        for (dsn, url) in cases {
            assert_eq!(to_url(dsn, MySql).as_deref(), Ok(url), "{dsn}");
        }
    }

    #[test]
    fn urls_must_fit_the_driver() {
        let url = "mysql://u:p@h:3306/d";
        assert_eq!(to_url(url, MySql).as_deref(), Ok(url));
        assert_eq!(
            to_url("mariadb://u:p@h/d", MySql).as_deref(),
            Ok("mysql://u:p@h/d")
        );
        assert!(to_url("postgresql://u@h/d", Postgres).is_ok());
        assert!(to_url("postgres://u:secret@h/d", MySql).is_err());
        assert!(to_url("mysql://u:secret@h/d", Sqlite).is_err());
        assert_eq!(
            to_url("data/x.db", Sqlite).as_deref(),
            Ok("sqlite://data/x.db")
        );
        assert_eq!(
            to_url("sqlite::memory:", Sqlite).as_deref(),
            Ok("sqlite::memory:")
        );
        assert!(to_url("host=db user=x", Postgres).is_err());
    }

    #[test]
    fn errors_never_show_the_password() {
        for dsn in [
            "user:hunter2@tcp(db:3306",
            "user:hunter2@tcp(db:3306)",
            "user:hunter2@bogus(db)/erp",
            "user:hunter2@tcp(db:3306)/erp?tls=maybe",
            "user:hunter2@tcp(d b)/erp",
        ] {
            let error = to_url(dsn, MySql).expect_err(dsn);
            assert!(!error.contains("hunter2"), "{error}");
        }
        let error = to_url("postgres://u:hunter2@h/d", MySql).expect_err("scheme");
        assert!(!error.contains("hunter2"), "{error}");
    }
}
