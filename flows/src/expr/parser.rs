//! The parser: tokens to an [`ExprNode`] tree, by precedence climbing, with errors that say
//! what was expected and what was found.

use super::ast::{BinaryOp, ExprKind, ExprNode, UnaryOp};
use super::builtins::Function;
use super::lexer::{Lexer, Lines, Tok, Token};
use super::suggest::{close_names, did_you_mean};
use super::{ExprError, MAX_DEPTH};
use crate::value::Value;

/// A parsed subtree, its depth (see "Limits" in `docs/expressions.md`), and where it starts
/// and ends including any parentheses around it, which the span of a parent node covers.
struct Parsed {
    node: ExprNode,
    depth: u32,
    start: usize,
    end: usize,
}

pub(super) struct Parser<'a> {
    src: &'a str,
    lines: &'a Lines<'a>,
    lexer: Lexer<'a>,
    peeked: Option<Token>,
    /// The last token consumed, to word "expected a value after `+`".
    prev: Option<(usize, usize)>,
    /// How many parse frames are open; bounded by [`MAX_DEPTH`] so that the parser's own
    /// recursion cannot exhaust the stack.
    nesting: u32,
    /// Inside a template: the byte offset of the hole's `{{`.
    hole: Option<usize>,
}

impl<'a> Parser<'a> {
    /// A parser of the expression starting at byte `start` of `src`. With `hole` (the offset
    /// of a template's `{{`), the expression ends at `}}` instead of at the end of `src`.
    pub(super) fn new(
        src: &'a str,
        lines: &'a Lines<'a>,
        start: usize,
        hole: Option<usize>,
    ) -> Parser<'a> {
        Parser {
            src,
            lines,
            lexer: Lexer::new(src, lines, start, hole.is_some()),
            peeked: None,
            prev: None,
            nesting: 0,
            hole,
        }
    }

    /// Parses one whole expression. Returns it and the byte offset after its end (after the
    /// `}}` in a template hole).
    pub(super) fn parse(mut self) -> Result<(ExprNode, usize), ExprError> {
        let first = self.peek()?.clone();
        match (first.tok, self.hole) {
            (Tok::Eof, None) => {
                return Err(self.lines.error(
                    first.start,
                    first.end,
                    "the expression is empty: write a value, a variable or a calculation",
                ));
            }
            (Tok::Eof, Some(open)) => return Err(self.unclosed_hole(open)),
            (Tok::CloseHole, Some(open)) => {
                return Err(self.lines.error(
                    open,
                    first.end,
                    "empty `{{ }}`: put an expression between the braces, like `{{ name }}`",
                ));
            }
            _ => {}
        }
        let parsed = self.expr(0)?;
        let next = self.peek()?.clone();
        match next.tok {
            Tok::Eof if self.hole.is_none() => Ok((parsed.node, next.end)),
            Tok::CloseHole => Ok((parsed.node, next.end)),
            Tok::Eof => Err(self.unclosed_hole(self.hole.unwrap_or(0))),
            Tok::RParen => Err(self.error(
                &next,
                "unmatched `)`: there is no `(` before it that it closes",
            )),
            Tok::RBracket => Err(self.error(
                &next,
                "unmatched `]`: there is no `[` before it that it closes",
            )),
            Tok::LParen => Err(self.error(
                &next,
                "only functions can be called, like `len(items)`: there is nothing to call before this `(`",
            )),
            _ => {
                let end = if self.hole.is_some() {
                    "`}}`"
                } else {
                    "the end of the expression"
                };
                let hint = if next.tok.starts_value() {
                    " (is an operator missing between the two?)"
                } else {
                    ""
                };
                Err(self.error(
                    &next,
                    format!(
                        "expected an operator or {end}, found {}{hint}",
                        self.describe(&next)
                    ),
                ))
            }
        }
    }

    fn unclosed_hole(&self, open: usize) -> ExprError {
        self.lines.error(
            open,
            open + 2,
            "this `{{` is never closed: end the expression with `}}`",
        )
    }

    fn peek(&mut self) -> Result<&Token, ExprError> {
        if self.peeked.is_none() {
            self.peeked = Some(self.lexer.next_token()?);
        }
        // Just filled above; the `Eof` fallback is never used.
        Ok(self.peeked.get_or_insert(Token {
            tok: Tok::Eof,
            start: 0,
            end: 0,
        }))
    }

    fn bump(&mut self) -> Result<Token, ExprError> {
        self.peek()?;
        let token = self.peeked.take().unwrap_or(Token {
            tok: Tok::Eof,
            start: 0,
            end: 0,
        });
        self.prev = Some((token.start, token.end));
        Ok(token)
    }

    fn text(&self, start: usize, end: usize) -> &'a str {
        self.src.get(start..end).unwrap_or("")
    }

    /// A token as the user wrote it, for messages: "`+`", "the end of the expression".
    fn describe(&self, token: &Token) -> String {
        match token.tok {
            Tok::Eof if self.hole.is_some() => "the end of the text".to_owned(),
            Tok::Eof => "the end of the expression".to_owned(),
            _ => {
                let text = self.text(token.start, token.end);
                if text.chars().count() > 30 {
                    let short: String = text.chars().take(27).collect();
                    format!("`{short}...`")
                } else {
                    format!("`{text}`")
                }
            }
        }
    }

    fn error(&self, token: &Token, message: impl Into<String>) -> ExprError {
        self.lines.error(token.start, token.end, message)
    }

    fn too_deep(&self, start: usize, end: usize) -> ExprError {
        self.lines.error(
            start,
            end,
            format!(
                "this expression is nested too deeply (more than {MAX_DEPTH} levels): split it into smaller steps"
            ),
        )
    }

    /// Opens a parse frame at `token`, failing once frames nest deeper than [`MAX_DEPTH`].
    /// Every frame holds a subtree at least one level deeper than its parent's, so a valid
    /// expression never trips this.
    fn enter(&mut self, token: &Token) -> Result<(), ExprError> {
        self.nesting += 1;
        if self.nesting > MAX_DEPTH {
            return Err(self.too_deep(token.start, token.end));
        }
        Ok(())
    }

    fn exit(&mut self) {
        self.nesting -= 1;
    }

    fn node(
        &self,
        kind: ExprKind,
        start: usize,
        end: usize,
        depth: u32,
    ) -> Result<Parsed, ExprError> {
        if depth > MAX_DEPTH {
            return Err(self.too_deep(start, end));
        }
        Ok(Parsed {
            node: ExprNode {
                kind,
                span: self.lines.span(start, end),
            },
            depth,
            start,
            end,
        })
    }

    /// Expects the token `want` (described as `what`), or fails with `context`.
    fn expect(&mut self, want: &Tok, what: &str, context: &str) -> Result<Token, ExprError> {
        let token = self.peek()?.clone();
        if &token.tok == want {
            return self.bump();
        }
        Err(self.error(
            &token,
            format!("expected {what}{context}, found {}", self.describe(&token)),
        ))
    }

    /// "line 2, column 5", for messages that point back at an opening bracket.
    fn position(&self, offset: usize) -> String {
        let span = self.lines.span(offset, offset);
        format!("line {}, column {}", span.line, span.column)
    }

    /// Binary operators binding at least as strongly as `min_precedence`, left-associative;
    /// comparisons do not chain.
    fn expr(&mut self, min_precedence: u8) -> Result<Parsed, ExprError> {
        let first = self.peek()?.clone();
        self.enter(&first)?;
        let mut lhs = self.unary()?;
        // The precedence of the comparison just built at this level, to refuse `a < b < c`.
        let mut last_comparison: Option<u8> = None;
        loop {
            let token = self.peek()?.clone();
            let Some(op) = binary_op(&token.tok) else {
                break;
            };
            if op.precedence() < min_precedence {
                break;
            }
            if op.is_comparison() && last_comparison == Some(op.precedence()) {
                let written = self.text(token.start, token.end);
                return Err(self.error(
                    &token,
                    format!(
                        "comparisons cannot be chained: `{written}` cannot follow another comparison; compare two values at a time and combine the results with `&&`, like `a < b && b < c`"
                    ),
                ));
            }
            self.bump()?;
            let rhs = self.expr(op.precedence() + 1)?;
            last_comparison = op.is_comparison().then(|| op.precedence());
            let (start, end) = (lhs.start, rhs.end);
            let depth = lhs.depth.max(rhs.depth) + 1;
            let kind = ExprKind::Binary {
                op,
                op_span: self.lines.span(token.start, token.end),
                lhs: Box::new(lhs.node),
                rhs: Box::new(rhs.node),
            };
            lhs = self.node(kind, start, end, depth)?;
        }
        self.exit();
        Ok(lhs)
    }

    fn unary(&mut self) -> Result<Parsed, ExprError> {
        let token = self.peek()?.clone();
        let op = match token.tok {
            Tok::Bang | Tok::Not => UnaryOp::Not,
            Tok::Minus => UnaryOp::Neg,
            _ => return self.postfix(),
        };
        self.bump()?;
        let next = self.peek()?.clone();
        self.enter(&next)?;
        let operand = self.unary()?;
        self.exit();
        let end = operand.end;
        let depth = operand.depth + 1;
        let kind = ExprKind::Unary {
            op,
            operand: Box::new(operand.node),
        };
        self.node(kind, token.start, end, depth)
    }

    fn postfix(&mut self) -> Result<Parsed, ExprError> {
        let mut target = self.primary()?;
        loop {
            let token = self.peek()?.clone();
            match token.tok {
                Tok::Dot => {
                    self.bump()?;
                    let name_token = self.peek()?.clone();
                    let name = match &name_token.tok {
                        Tok::Ident(name) => name.clone(),
                        Tok::True | Tok::False | Tok::Null | Tok::And | Tok::Or | Tok::Not => {
                            self.text(name_token.start, name_token.end).to_owned()
                        }
                        Tok::Number(_) => {
                            return Err(self.error(
                                &name_token,
                                format!(
                                    "expected a field name after `.`, found {}: to take an element of a list, write `[{}]`",
                                    self.describe(&name_token),
                                    self.text(name_token.start, name_token.end)
                                ),
                            ));
                        }
                        _ => {
                            return Err(self.error(
                                &name_token,
                                format!(
                                    "expected a field name after `.`, found {}",
                                    self.describe(&name_token)
                                ),
                            ));
                        }
                    };
                    self.bump()?;
                    let start = target.start;
                    let depth = target.depth + 1;
                    let kind = ExprKind::Field {
                        target: Box::new(target.node),
                        name,
                        name_span: self.lines.span(name_token.start, name_token.end),
                    };
                    target = self.node(kind, start, name_token.end, depth)?;
                }
                Tok::LBracket => {
                    self.bump()?;
                    let index = self.expr(0)?;
                    let close = self.expect(
                        &Tok::RBracket,
                        "`]`",
                        &format!(" to close the `[` at {}", self.position(token.start)),
                    )?;
                    let start = target.start;
                    let depth = target.depth.max(index.depth) + 1;
                    let kind = ExprKind::Index {
                        target: Box::new(target.node),
                        index: Box::new(index.node),
                    };
                    target = self.node(kind, start, close.end, depth)?;
                }
                _ => return Ok(target),
            }
        }
    }

    fn primary(&mut self) -> Result<Parsed, ExprError> {
        let token = self.peek()?.clone();
        let literal = match &token.tok {
            Tok::Number(n) => Some(Value::Number(*n)),
            Tok::Str(s) => Some(Value::String(s.clone())),
            Tok::True => Some(Value::Bool(true)),
            Tok::False => Some(Value::Bool(false)),
            Tok::Null => Some(Value::Null),
            _ => None,
        };
        if let Some(value) = literal {
            self.bump()?;
            return self.node(ExprKind::Literal(value), token.start, token.end, 1);
        }
        match &token.tok {
            Tok::Ident(name) => {
                self.bump()?;
                if self.peek()?.tok == Tok::LParen {
                    self.call(name, &token)
                } else {
                    self.node(ExprKind::Var(name.clone()), token.start, token.end, 1)
                }
            }
            Tok::LParen => {
                self.bump()?;
                let inner = self.expr(0)?;
                let close = self.expect(
                    &Tok::RParen,
                    "`)`",
                    &format!(" to close the `(` at {}", self.position(token.start)),
                )?;
                // Parentheses leave no node but count as a level of nesting.
                let depth = inner.depth + 1;
                if depth > MAX_DEPTH {
                    return Err(self.too_deep(token.start, close.end));
                }
                Ok(Parsed {
                    node: inner.node,
                    depth,
                    start: token.start,
                    end: close.end,
                })
            }
            Tok::LBracket => self.list(&token),
            _ => Err(self.expected_value(&token)),
        }
    }

    fn expected_value(&self, token: &Token) -> ExprError {
        let found = self.describe(token);
        let message = match self.prev {
            Some((start, end)) => {
                format!(
                    "expected a value after `{}`, found {found}",
                    self.text(start, end)
                )
            }
            None => format!("expected a value, found {found}"),
        };
        self.error(token, message)
    }

    fn list(&mut self, open: &Token) -> Result<Parsed, ExprError> {
        self.bump()?;
        let mut items = Vec::new();
        let mut depth = 0;
        let close = if self.peek()?.tok == Tok::RBracket {
            self.bump()?
        } else {
            loop {
                let item = self.expr(0)?;
                depth = depth.max(item.depth);
                items.push(item.node);
                let token = self.peek()?.clone();
                match token.tok {
                    Tok::Comma => {
                        self.bump()?;
                    }
                    Tok::RBracket => break self.bump()?,
                    _ => {
                        return Err(self.error(
                            &token,
                            format!(
                                "expected `,` or `]` to close the list that starts at {}, found {}",
                                self.position(open.start),
                                self.describe(&token)
                            ),
                        ));
                    }
                }
            }
        };
        self.node(ExprKind::List(items), open.start, close.end, depth + 1)
    }

    fn call(&mut self, name: &str, name_token: &Token) -> Result<Parsed, ExprError> {
        let Some(function) = Function::from_name(name) else {
            let close = close_names(name, Function::ALL.map(Function::name), true);
            return Err(self.error(
                name_token,
                format!("unknown function `{name}`{}", did_you_mean(&close)),
            ));
        };
        self.bump()?; // `(`
        let mut args = Vec::new();
        let mut depth = 0;
        let close = if self.peek()?.tok == Tok::RParen {
            self.bump()?
        } else {
            loop {
                let arg = self.expr(0)?;
                depth = depth.max(arg.depth);
                args.push(arg.node);
                let token = self.peek()?.clone();
                match token.tok {
                    Tok::Comma => {
                        self.bump()?;
                    }
                    Tok::RParen => break self.bump()?,
                    _ => {
                        return Err(self.error(
                            &token,
                            format!(
                                "expected `,` or `)` after an argument of `{name}`, found {}",
                                self.describe(&token)
                            ),
                        ));
                    }
                }
            }
        };
        let (min, max) = function.arity();
        if args.len() < min || args.len() > max {
            return Err(self.lines.error(
                name_token.start,
                close.end,
                function.arity_message(args.len()),
            ));
        }
        let kind = ExprKind::Call {
            function,
            name_span: self.lines.span(name_token.start, name_token.end),
            args,
        };
        self.node(kind, name_token.start, close.end, depth + 1)
    }
}

fn binary_op(tok: &Tok) -> Option<BinaryOp> {
    Some(match tok {
        Tok::OrOr | Tok::Or => BinaryOp::Or,
        Tok::AndAnd | Tok::And => BinaryOp::And,
        Tok::EqEq => BinaryOp::Eq,
        Tok::BangEq => BinaryOp::Ne,
        Tok::Lt => BinaryOp::Lt,
        Tok::Le => BinaryOp::Le,
        Tok::Gt => BinaryOp::Gt,
        Tok::Ge => BinaryOp::Ge,
        Tok::Plus => BinaryOp::Add,
        Tok::Minus => BinaryOp::Sub,
        Tok::Star => BinaryOp::Mul,
        Tok::Slash => BinaryOp::Div,
        Tok::Percent => BinaryOp::Rem,
        _ => return None,
    })
}
