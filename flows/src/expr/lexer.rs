//! Tokens: cuts expression text into numbers, strings, names and operators, and turns byte
//! offsets into line/column spans.

use std::cell::Cell;

use super::{ExprError, Span};

/// Line starts of a text, to turn byte offsets into 1-based line/column positions.
pub(super) struct Lines<'a> {
    src: &'a str,
    starts: Vec<usize>,
    /// Per line: whether it is pure ASCII, so that its columns are byte distances.
    ascii: Vec<bool>,
    /// The last position asked for, as (byte offset, line, 0-based column). Spans are asked for
    /// near each other, so counting characters from here keeps long lines of Chinese text
    /// with many holes linear instead of quadratic.
    last: Cell<(usize, usize, usize)>,
}

impl<'a> Lines<'a> {
    pub(super) fn new(src: &'a str) -> Lines<'a> {
        let mut starts = vec![0];
        starts.extend(src.match_indices('\n').map(|(i, _)| i + 1));
        let ascii = src.split('\n').map(str::is_ascii).collect();
        Lines {
            src,
            starts,
            ascii,
            last: Cell::new((0, 0, 0)),
        }
    }

    /// The span from byte `start` to byte `end`; `line`/`column` describe `start`.
    pub(super) fn span(&self, start: usize, end: usize) -> Span {
        let line = self.starts.partition_point(|&s| s <= start).max(1) - 1;
        let line_start = self.starts[line];
        let chars =
            |from: usize, to: usize| self.src.get(from..to).map_or(0, |t| t.chars().count());
        let column = if self.ascii.get(line).copied().unwrap_or(false) {
            start.saturating_sub(line_start)
        } else {
            let (last, last_line, last_column) = self.last.get();
            if last_line == line {
                if start >= last {
                    last_column + chars(last, start)
                } else {
                    last_column.saturating_sub(chars(start, last))
                }
            } else {
                chars(line_start, start)
            }
        };
        self.last.set((start, line, column));
        Span {
            start,
            end,
            line: u32::try_from(line + 1).unwrap_or(u32::MAX),
            column: u32::try_from(column + 1).unwrap_or(u32::MAX),
        }
    }

    pub(super) fn error(&self, start: usize, end: usize, message: impl Into<String>) -> ExprError {
        ExprError {
            span: self.span(start, end),
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    Number(f64),
    Str(String),
    Ident(String),
    True,
    False,
    Null,
    /// `and`
    And,
    /// `or`
    Or,
    /// `not`
    Not,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Dot,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    Bang,
    EqEq,
    BangEq,
    Lt,
    Le,
    Gt,
    Ge,
    AndAnd,
    OrOr,
    /// `}}`, only inside a template hole.
    CloseHole,
    Eof,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Token {
    pub(super) tok: Tok,
    pub(super) start: usize,
    pub(super) end: usize,
}

pub(super) struct Lexer<'a> {
    src: &'a str,
    lines: &'a Lines<'a>,
    pos: usize,
    /// Inside a template hole `}}` ends the expression.
    in_hole: bool,
}

impl<'a> Lexer<'a> {
    pub(super) fn new(
        src: &'a str,
        lines: &'a Lines<'a>,
        start: usize,
        in_hole: bool,
    ) -> Lexer<'a> {
        Lexer {
            src,
            lines,
            pos: start,
            in_hole,
        }
    }

    fn peek_char(&self) -> Option<char> {
        self.src.get(self.pos..)?.chars().next()
    }

    fn peek_second(&self) -> Option<char> {
        let mut chars = self.src.get(self.pos..)?.chars();
        chars.next();
        chars.next()
    }

    fn error(&self, start: usize, end: usize, message: impl Into<String>) -> ExprError {
        self.lines.error(start, end, message)
    }

    pub(super) fn next_token(&mut self) -> Result<Token, ExprError> {
        while let Some(c) = self.peek_char() {
            if !c.is_whitespace() {
                break;
            }
            self.pos += c.len_utf8();
        }
        let start = self.pos;
        let Some(c) = self.peek_char() else {
            return Ok(Token {
                tok: Tok::Eof,
                start,
                end: start,
            });
        };
        let two = self.peek_second();
        let (tok, len) = match (c, two) {
            ('0'..='9', _) => return self.number(),
            ('"' | '\'', _) => return self.string(c),
            ('a'..='z' | 'A'..='Z' | '_', _) => return Ok(self.ident()),
            ('}', Some('}')) if self.in_hole => (Tok::CloseHole, 2),
            ('(', _) => (Tok::LParen, 1),
            (')', _) => (Tok::RParen, 1),
            ('[', _) => (Tok::LBracket, 1),
            (']', _) => (Tok::RBracket, 1),
            (',', _) => (Tok::Comma, 1),
            ('.', _) => (Tok::Dot, 1),
            ('+', _) => (Tok::Plus, 1),
            ('-', _) => (Tok::Minus, 1),
            ('*', _) => (Tok::Star, 1),
            ('/', _) => (Tok::Slash, 1),
            ('%', _) => (Tok::Percent, 1),
            ('!', Some('=')) => (Tok::BangEq, 2),
            ('!', _) => (Tok::Bang, 1),
            ('=', Some('=')) => (Tok::EqEq, 2),
            ('<', Some('=')) => (Tok::Le, 2),
            ('<', _) => (Tok::Lt, 1),
            ('>', Some('=')) => (Tok::Ge, 2),
            ('>', _) => (Tok::Gt, 1),
            ('&', Some('&')) => (Tok::AndAnd, 2),
            ('|', Some('|')) => (Tok::OrOr, 2),
            _ => return Err(self.unexpected_char(c)),
        };
        self.pos += len;
        Ok(Token {
            tok,
            start,
            end: self.pos,
        })
    }

    fn unexpected_char(&self, c: char) -> ExprError {
        let end = self.pos + c.len_utf8();
        let message = match c {
            '=' => "`=` is not an operator: to compare two values, write `==`".to_owned(),
            '&' => "a single `&` is not an operator: write `&&` (or `and`)".to_owned(),
            '|' => "a single `|` is not an operator: write `||` (or `or`)".to_owned(),
            '{' | '}' if !self.in_hole => {
                format!(
                    "unexpected `{c}`: expressions are written without braces (`{{{{ }}}}` only marks expressions inside message texts)"
                )
            }
            '}' => "unexpected `}`: the expression must end with `}}`".to_owned(),
            '\u{201c}' | '\u{201d}' | '\u{2018}' | '\u{2019}' | '\u{300c}' | '\u{300d}' => {
                format!(
                    "unexpected character `{c}`: write strings between straight quotes, like \"text\" or 'text'"
                )
            }
            '\u{ff01}'..='\u{ff5e}' => {
                // Full-width forms of ASCII characters, typed with a Chinese input method on.
                let ascii = char::from_u32(u32::from(c) - 0xfee0).unwrap_or(c);
                format!("unexpected full-width character `{c}`: did you mean `{ascii}`?")
            }
            _ => format!("unexpected character `{c}`"),
        };
        self.error(self.pos, end, message)
    }

    fn number(&mut self) -> Result<Token, ExprError> {
        let start = self.pos;
        let bytes = self.src.as_bytes();
        let digits = |mut i: usize| {
            while bytes.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            i
        };
        let mut end = digits(start);
        if bytes.get(end) == Some(&b'.') && bytes.get(end + 1).is_some_and(u8::is_ascii_digit) {
            end = digits(end + 1);
        }
        if bytes
            .get(end)
            .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
        {
            let mut bad_end = end;
            while bytes
                .get(bad_end)
                .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'.')
            {
                bad_end += 1;
            }
            let text = &self.src[start..bad_end];
            return Err(self.error(
                start,
                bad_end,
                format!("`{text}` is not a number: write numbers like `12` or `3.5`"),
            ));
        }
        let text = &self.src[start..end];
        let value = text.parse::<f64>().unwrap_or(f64::INFINITY);
        if !value.is_finite() {
            return Err(self.error(start, end, "this number is too large"));
        }
        self.pos = end;
        Ok(Token {
            tok: Tok::Number(value),
            start,
            end,
        })
    }

    fn ident(&mut self) -> Token {
        let start = self.pos;
        let bytes = self.src.as_bytes();
        let mut end = start;
        while bytes
            .get(end)
            .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
        {
            end += 1;
        }
        self.pos = end;
        let text = &self.src[start..end];
        let tok = match text {
            "true" => Tok::True,
            "false" => Tok::False,
            "null" => Tok::Null,
            "and" => Tok::And,
            "or" => Tok::Or,
            "not" => Tok::Not,
            _ => Tok::Ident(text.to_owned()),
        };
        Token { tok, start, end }
    }

    fn string(&mut self, quote: char) -> Result<Token, ExprError> {
        let start = self.pos;
        self.pos += 1;
        let mut value = String::new();
        loop {
            let Some(c) = self.peek_char() else {
                return Err(self.error(
                    start,
                    self.pos,
                    format!("unclosed string: add a closing {quote} at the end of the text"),
                ));
            };
            let at = self.pos;
            self.pos += c.len_utf8();
            match c {
                _ if c == quote => break,
                '\\' => value.push(self.escape(at)?),
                _ => value.push(c),
            }
        }
        Ok(Token {
            tok: Tok::Str(value),
            start,
            end: self.pos,
        })
    }

    /// Reads the escape after a backslash at byte `at`.
    fn escape(&mut self, at: usize) -> Result<char, ExprError> {
        let Some(c) = self.peek_char() else {
            return Err(self.error(at, self.pos, "unclosed string: it ends with a lone `\\`"));
        };
        self.pos += c.len_utf8();
        Ok(match c {
            '\\' => '\\',
            '\'' => '\'',
            '"' => '"',
            'n' => '\n',
            't' => '\t',
            'u' => return self.unicode_escape(at),
            _ => {
                return Err(self.error(
                    at,
                    self.pos,
                    format!(
                        "unknown escape `\\{c}` in a string: the escapes are `\\\\`, `\\'`, `\\\"`, `\\n`, `\\t` and `\\u{{...}}`"
                    ),
                ));
            }
        })
    }

    /// Reads `{XXXX}` after `\u` (1 to 6 hex digits naming a Unicode scalar value).
    fn unicode_escape(&mut self, at: usize) -> Result<char, ExprError> {
        let rest = self.src.get(self.pos..).unwrap_or("");
        let bad = |lexer: &Self, end: usize| {
            lexer.error(
                at,
                end,
                "invalid `\\u` escape: write the character's hexadecimal code between braces, like `\\u{4F60}`",
            )
        };
        let Some(body) = rest.strip_prefix('{') else {
            return Err(bad(self, self.pos));
        };
        let hex_len = body.bytes().take_while(u8::is_ascii_hexdigit).count();
        if !(1..=6).contains(&hex_len) || body.as_bytes().get(hex_len) != Some(&b'}') {
            let end = self.pos + 1 + hex_len;
            return Err(bad(self, end));
        }
        let end = self.pos + 2 + hex_len;
        let c = u32::from_str_radix(&body[..hex_len], 16)
            .ok()
            .and_then(char::from_u32);
        match c {
            Some(c) => {
                self.pos = end;
                Ok(c)
            }
            None => Err(self.error(
                at,
                end,
                format!("`\\u{{{}}}` is not a Unicode character", &body[..hex_len]),
            )),
        }
    }
}

impl Tok {
    /// Whether a value may start with this token (used to word "expected ..." messages).
    pub(super) fn starts_value(&self) -> bool {
        matches!(
            self,
            Tok::Number(_)
                | Tok::Str(_)
                | Tok::Ident(_)
                | Tok::True
                | Tok::False
                | Tok::Null
                | Tok::Not
                | Tok::LParen
                | Tok::LBracket
                | Tok::Minus
                | Tok::Bang
        )
    }
}
