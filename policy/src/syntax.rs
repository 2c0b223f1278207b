//! The file format's syntax: `kind "label"? { name = value … }` blocks, read into a tree that
//! keeps the byte offset of every part, with every lexical and syntax problem collected.
//!
//! Values are strings (`"…"` with `\"`, `\\`, `\n`, `\t`, `\r` and `\u{…}` escapes; a string
//! may span lines), numbers, `true`/`false`, lists `[a, b]` and maps `{ key = value }`.
//! Comments run from `#` or `//` to the end of the line, or between `/*` and `*/`. What the
//! blocks mean is decided in `load.rs`; this module knows nothing of policies.

use crate::diagnostic::{Diagnostic, Location};

/// The deepest lists and maps may nest: keeps the recursive parser far from the stack's end
/// whatever the input.
const MAX_NESTING: u32 = 16;

/// The text being read, with the offsets where its lines start (to turn offsets into
/// line and column).
pub(crate) struct Source<'a> {
    text: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> Source<'a> {
    pub(crate) fn new(text: &'a str) -> Source<'a> {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Source { text, line_starts }
    }

    /// The 1-based line and column (in characters) of a byte offset.
    pub(crate) fn location(&self, offset: usize) -> Location {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&start| start <= offset);
        let start = self
            .line_starts
            .get(line.wrapping_sub(1))
            .copied()
            .unwrap_or(0);
        let column = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count());
        Location {
            line: u32::try_from(line).unwrap_or(u32::MAX),
            column: u32::try_from(column + 1).unwrap_or(u32::MAX),
        }
    }

    /// The locations of many offsets at once, in one walk over the text: `offsets` must not
    /// decrease. (One `location` call per byte of a long condition would cost the square of
    /// its length.)
    pub(crate) fn locations(&self, offsets: impl IntoIterator<Item = usize>) -> Vec<Location> {
        let mut offsets = offsets.into_iter().peekable();
        let Some(&first) = offsets.peek() else {
            return Vec::new();
        };
        let mut location = self.location(first);
        let mut pos = first.min(self.text.len());
        let mut out = Vec::new();
        for offset in offsets {
            let offset = offset.min(self.text.len());
            while pos < offset {
                let Some(c) = self.text.get(pos..).and_then(|rest| rest.chars().next()) else {
                    // Not at a character boundary: step to the next one.
                    pos += 1;
                    continue;
                };
                if c == '\n' {
                    location.line = location.line.saturating_add(1);
                    location.column = 1;
                } else {
                    location.column = location.column.saturating_add(1);
                }
                pos += c.len_utf8();
            }
            out.push(location);
        }
        out
    }

    pub(crate) fn error(&self, offset: usize, message: impl Into<String>) -> Diagnostic {
        let location = self.location(offset);
        Diagnostic {
            line: location.line,
            column: location.column,
            message: message.into(),
        }
    }
}

/// A string literal: its value and where each of its bytes came from in the file.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Str {
    pub(crate) value: String,
    /// The file offset of the first byte inside the quotes.
    pub(crate) start: usize,
    /// For a string with escapes, the file offset of each byte of `value` (plus one past the
    /// end); `None` when `value` is the file text from `start` on, byte for byte.
    pub(crate) offsets: Option<Vec<usize>>,
}

impl Str {
    /// The file offset of byte `i` of the value.
    pub(crate) fn file_offset(&self, i: usize) -> usize {
        match &self.offsets {
            None => self.start + i,
            Some(offsets) => offsets
                .get(i)
                .or(offsets.last())
                .copied()
                .unwrap_or(self.start),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(Str),
    Number(f64),
    LBrace,
    RBrace,
    LBracket,
    RBracket,
    Eq,
    Comma,
    Eof,
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Ident(name) => format!("`{name}`"),
            Tok::Str(_) => "a string".to_owned(),
            Tok::Number(_) => "a number".to_owned(),
            Tok::LBrace => "`{`".to_owned(),
            Tok::RBrace => "`}`".to_owned(),
            Tok::LBracket => "`[`".to_owned(),
            Tok::RBracket => "`]`".to_owned(),
            Tok::Eq => "`=`".to_owned(),
            Tok::Comma => "`,`".to_owned(),
            Tok::Eof => "the end of the file".to_owned(),
        }
    }
}

struct Token {
    tok: Tok,
    at: usize,
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// Cuts the text into tokens. Problems are reported and skipped, so the parser sees as much
/// of the file as possible and can report its own problems too.
fn lex(source: &Source<'_>, errors: &mut Vec<Diagnostic>) -> Vec<Token> {
    let text = source.text;
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        let tok = match c {
            c if c.is_whitespace() => continue,
            '#' => {
                skip_line(&mut chars);
                continue;
            }
            '/' if matches!(chars.peek(), Some((_, '/'))) => {
                skip_line(&mut chars);
                continue;
            }
            '/' if matches!(chars.peek(), Some((_, '*'))) => {
                chars.next();
                let mut prev = ' ';
                let mut closed = false;
                for (_, c) in chars.by_ref() {
                    if prev == '*' && c == '/' {
                        closed = true;
                        break;
                    }
                    prev = c;
                }
                if !closed {
                    errors.push(source.error(at, "this comment is never closed with `*/`"));
                }
                continue;
            }
            '{' => Tok::LBrace,
            '}' => Tok::RBrace,
            '[' => Tok::LBracket,
            ']' => Tok::RBracket,
            '=' => Tok::Eq,
            ',' => Tok::Comma,
            '"' => Tok::Str(lex_string(source, at, &mut chars, errors)),
            c if c.is_ascii_digit() || c == '-' => {
                let mut end = at + c.len_utf8();
                while let Some(&(i, c)) = chars.peek() {
                    if c.is_ascii_digit() || c == '.' {
                        end = i + 1;
                        chars.next();
                    } else {
                        break;
                    }
                }
                let raw = text.get(at..end).unwrap_or_default();
                match raw.parse::<f64>() {
                    Ok(n) if n.is_finite() => Tok::Number(n),
                    _ => {
                        errors.push(source.error(at, format!("`{raw}` is not a number")));
                        continue;
                    }
                }
            }
            c if is_ident_start(c) => {
                let mut end = at + c.len_utf8();
                while let Some(&(i, c)) = chars.peek() {
                    if is_ident_char(c) {
                        end = i + c.len_utf8();
                        chars.next();
                    } else {
                        break;
                    }
                }
                Tok::Ident(text.get(at..end).unwrap_or_default().to_owned())
            }
            c => {
                let hint = if c == '\'' || c == '“' || c == '”' {
                    ": strings are written between straight double quotes (\"…\")"
                } else {
                    ""
                };
                errors.push(source.error(at, format!("unexpected character `{c}`{hint}")));
                continue;
            }
        };
        tokens.push(Token { tok, at });
    }
    tokens.push(Token {
        tok: Tok::Eof,
        at: text.len(),
    });
    tokens
}

fn skip_line(chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>) {
    for (_, c) in chars.by_ref() {
        if c == '\n' {
            break;
        }
    }
}

fn lex_string(
    source: &Source<'_>,
    quote: usize,
    chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>,
    errors: &mut Vec<Diagnostic>,
) -> Str {
    let start = quote + 1;
    let mut value = String::new();
    let mut offsets: Vec<usize> = Vec::new();
    let mut escaped = false;
    let push = |value: &mut String, offsets: &mut Vec<usize>, c: char, at: usize| {
        value.push(c);
        offsets.extend(std::iter::repeat_n(at, c.len_utf8()));
    };
    loop {
        let Some((at, c)) = chars.next() else {
            errors.push(source.error(quote, "this string is never closed with `\"`"));
            break;
        };
        match c {
            '"' => {
                offsets.push(at);
                break;
            }
            '\\' => {
                escaped = true;
                match chars.next() {
                    Some((_, 'n')) => push(&mut value, &mut offsets, '\n', at),
                    Some((_, 't')) => push(&mut value, &mut offsets, '\t', at),
                    Some((_, 'r')) => push(&mut value, &mut offsets, '\r', at),
                    Some((_, '"')) => push(&mut value, &mut offsets, '"', at),
                    Some((_, '\\')) => push(&mut value, &mut offsets, '\\', at),
                    Some((_, 'u')) => match lex_unicode_escape(chars) {
                        Some(c) => push(&mut value, &mut offsets, c, at),
                        None => errors.push(source.error(
                            at,
                            "a `\\u` escape is written `\\u{…}` with 1 to 6 hex digits of a Unicode scalar value",
                        )),
                    },
                    Some((_, other)) => errors.push(source.error(
                        at,
                        format!(
                            "unknown escape `\\{other}`: strings know `\\\"`, `\\\\`, `\\n`, `\\t`, `\\r` and `\\u{{…}}`"
                        ),
                    )),
                    None => {}
                }
            }
            c => push(&mut value, &mut offsets, c, at),
        }
    }
    Str {
        value,
        start,
        offsets: escaped.then_some(offsets),
    }
}

fn lex_unicode_escape(chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>) -> Option<char> {
    if !matches!(chars.peek(), Some((_, '{'))) {
        return None;
    }
    chars.next();
    let mut digits = String::new();
    for (_, c) in chars.by_ref() {
        if c == '}' {
            break;
        }
        digits.push(c);
        if digits.len() > 6 {
            return None;
        }
    }
    u32::from_str_radix(&digits, 16)
        .ok()
        .and_then(char::from_u32)
}

/// A value in the file, at the offset where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub(crate) kind: NodeKind,
    pub(crate) at: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum NodeKind {
    Str(Str),
    Number(f64),
    Bool(bool),
    List(Vec<Node>),
    Map(Vec<Attr>),
}

impl NodeKind {
    pub(crate) fn describe(&self) -> &'static str {
        match self {
            NodeKind::Str(_) => "a string",
            NodeKind::Number(_) => "a number",
            NodeKind::Bool(_) => "a bool",
            NodeKind::List(_) => "a list",
            NodeKind::Map(_) => "a map",
        }
    }
}

/// `name = value`, in a block or a map.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Attr {
    pub(crate) name: String,
    pub(crate) at: usize,
    pub(crate) value: Node,
}

/// `kind "label" { attrs }`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Block {
    pub(crate) kind: String,
    pub(crate) at: usize,
    pub(crate) label: Option<Str>,
    pub(crate) attrs: Vec<Attr>,
}

/// Reads every block of the file. Blocks with syntax errors are left out of the result, and
/// every problem found is added to `errors`.
pub(crate) fn parse(source: &Source<'_>, errors: &mut Vec<Diagnostic>) -> Vec<Block> {
    let tokens = lex(source, errors);
    let mut parser = Parser {
        source,
        tokens,
        pos: 0,
        errors,
    };
    let mut blocks = Vec::new();
    loop {
        match parser.peek() {
            Tok::Eof => break,
            Tok::Ident(_) => {
                if let Some(block) = parser.block() {
                    blocks.push(block);
                }
            }
            other => {
                let message = format!(
                    "expected a block such as `policy {{ … }}`, found {}",
                    other.describe()
                );
                parser.error_here(message);
                parser.recover_top_level();
            }
        }
    }
    blocks
}

struct Parser<'s, 'e> {
    source: &'s Source<'s>,
    tokens: Vec<Token>,
    pos: usize,
    errors: &'e mut Vec<Diagnostic>,
}

/// A syntax error has been reported; the caller recovers.
struct Reported;

impl Parser<'_, '_> {
    fn peek(&self) -> &Tok {
        self.tokens.get(self.pos).map_or(&Tok::Eof, |t| &t.tok)
    }

    fn at(&self) -> usize {
        self.tokens
            .get(self.pos)
            .map_or(self.source.text.len(), |t| t.at)
    }

    fn bump(&mut self) -> Tok {
        let tok = self.peek().clone();
        if self.pos < self.tokens.len() {
            self.pos += 1;
        }
        tok
    }

    fn error_here(&mut self, message: String) {
        let at = self.at();
        self.errors.push(self.source.error(at, message));
    }

    fn expect(&mut self, want: &Tok, what: &str) -> Result<(), Reported> {
        if self.peek() == want {
            self.bump();
            Ok(())
        } else {
            let message = format!("expected {what}, found {}", self.peek().describe());
            self.error_here(message);
            Err(Reported)
        }
    }

    /// After an error outside any block: skip to the token after the next `}` that closes
    /// what was open, or to an identifier at the start of a line (the next block).
    fn recover_top_level(&mut self) {
        let mut depth = 0u32;
        loop {
            match self.bump() {
                Tok::Eof => {
                    self.pos = self.tokens.len().saturating_sub(1);
                    return;
                }
                Tok::LBrace | Tok::LBracket => depth += 1,
                Tok::RBrace | Tok::RBracket => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 && matches!(self.peek(), Tok::Ident(_)) {
                        return;
                    }
                }
                _ => {}
            }
            if depth == 0 && matches!(self.peek(), Tok::Ident(_)) {
                return;
            }
        }
    }

    fn block(&mut self) -> Option<Block> {
        let at = self.at();
        let Tok::Ident(kind) = self.bump() else {
            return None;
        };
        let label = match self.peek() {
            Tok::Str(label) => {
                let label = label.clone();
                self.bump();
                Some(label)
            }
            _ => None,
        };
        if self
            .expect(&Tok::LBrace, &format!("`{{` to open the `{kind}` block"))
            .is_err()
        {
            self.recover_top_level();
            return None;
        }
        let (attrs, ok) = self.attrs(&Tok::RBrace, 1);
        ok.then_some(Block {
            kind,
            at,
            label,
            attrs,
        })
    }

    /// `name = value` pairs up to `close`, which is consumed. On a syntax error, skips to the
    /// next `name =` at this level or to `close`; the flag says whether all went well.
    fn attrs(&mut self, close: &Tok, depth: u32) -> (Vec<Attr>, bool) {
        let mut attrs = Vec::new();
        let mut ok = true;
        loop {
            match self.peek() {
                t if t == close => {
                    self.bump();
                    return (attrs, ok);
                }
                Tok::Eof => {
                    self.error_here(format!(
                        "expected {} to close the block, found the end of the file",
                        close.describe()
                    ));
                    return (attrs, false);
                }
                Tok::Comma => {
                    self.bump();
                }
                _ => match self.attr(depth) {
                    Ok(attr) => attrs.push(attr),
                    Err(Reported) => {
                        ok = false;
                        if !self.recover_in_block(close) {
                            return (attrs, false);
                        }
                    }
                },
            }
        }
    }

    /// Skips to the next `name =` at this level (true) or past `close` (false).
    fn recover_in_block(&mut self, close: &Tok) -> bool {
        let mut depth = 0u32;
        loop {
            let here = self.peek().clone();
            match here {
                Tok::Eof => return false,
                Tok::Ident(_)
                    if depth == 0
                        && matches!(
                            self.tokens.get(self.pos + 1).map(|t| &t.tok),
                            Some(Tok::Eq)
                        ) =>
                {
                    return true;
                }
                ref t if depth == 0 && t == close => {
                    self.bump();
                    return false;
                }
                Tok::LBrace | Tok::LBracket => depth += 1,
                Tok::RBrace | Tok::RBracket => depth = depth.saturating_sub(1),
                _ => {}
            }
            self.bump();
        }
    }

    fn attr(&mut self, depth: u32) -> Result<Attr, Reported> {
        let at = self.at();
        let name = match self.bump() {
            Tok::Ident(name) => name,
            Tok::Str(name) if depth > 1 => name.value,
            other => {
                self.pos = self.pos.saturating_sub(1);
                self.error_here(format!("expected a field name, found {}", other.describe()));
                return Err(Reported);
            }
        };
        self.expect(&Tok::Eq, &format!("`=` after `{name}`"))?;
        let value = self.value(depth)?;
        Ok(Attr { name, at, value })
    }

    fn value(&mut self, depth: u32) -> Result<Node, Reported> {
        let at = self.at();
        if depth > MAX_NESTING {
            self.error_here(format!(
                "lists and maps nest too deeply (at most {MAX_NESTING} levels)"
            ));
            return Err(Reported);
        }
        let kind = match self.bump() {
            Tok::Str(s) => NodeKind::Str(s),
            Tok::Number(n) => NodeKind::Number(n),
            Tok::Ident(word) if word == "true" => NodeKind::Bool(true),
            Tok::Ident(word) if word == "false" => NodeKind::Bool(false),
            Tok::LBracket => {
                let mut items = Vec::new();
                loop {
                    if self.peek() == &Tok::RBracket {
                        self.bump();
                        break;
                    }
                    items.push(self.value(depth + 1)?);
                    match self.peek() {
                        Tok::Comma => {
                            self.bump();
                        }
                        Tok::RBracket => {}
                        other => {
                            let message = format!(
                                "expected `,` or `]` in the list, found {}",
                                other.describe()
                            );
                            self.error_here(message);
                            return Err(Reported);
                        }
                    }
                }
                NodeKind::List(items)
            }
            Tok::LBrace => {
                let (attrs, ok) = self.attrs(&Tok::RBrace, depth + 1);
                if !ok {
                    return Err(Reported);
                }
                NodeKind::Map(attrs)
            }
            Tok::Ident(word) => {
                self.pos = self.pos.saturating_sub(1);
                let next_is_field =
                    matches!(self.tokens.get(self.pos + 1).map(|t| &t.tok), Some(Tok::Eq));
                self.error_here(if next_is_field {
                    format!("expected a value, found the next field `{word}`")
                } else {
                    format!("expected a value, found `{word}`: strings are written in double quotes (\"{word}\")")
                });
                return Err(Reported);
            }
            other => {
                self.pos = self.pos.saturating_sub(1);
                self.error_here(format!("expected a value, found {}", other.describe()));
                return Err(Reported);
            }
        };
        Ok(Node { kind, at })
    }
}
