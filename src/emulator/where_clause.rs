//! The `where` clause: a tokenizer and a recursive-descent parser that turn a
//! Backendless where clause into an SQLite condition over the JSON `body`
//! column. Every value and every property path is a bound parameter; the SQL
//! text contains only fixed keywords, operators and `?` placeholders.
//!
//! Grammar (keywords case-insensitive):
//! ```text
//! expr      := and ( OR and )*
//! and       := unary ( AND unary )*
//! unary     := NOT unary | '(' expr ')' | predicate
//! predicate := ident ( cmp value | [NOT] LIKE string | [NOT] IN '(' value (',' value)* ')'
//!                    | IS [NOT] NULL )
//! cmp       := = | != | <> | < | <= | > | >=
//! value     := 'string' ('' escapes a quote) | number | TRUE | FALSE | NULL
//! ```

use rusqlite::types::Value as SqlValue;

use super::error::ApiError;

/// A compiled condition: SQL with `?` placeholders and their values in order.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlCondition {
    /// The SQL text (no user data in it).
    pub sql: String,
    /// The bound parameters, in placeholder order.
    pub params: Vec<SqlValue>,
}

const MAX_LEN: usize = 20_000;
const MAX_DEPTH: usize = 64;

/// Whether `name` is a valid property name: `[A-Za-z_][A-Za-z0-9_]*`, at most 128 chars.
pub(super) fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 128
}

/// The JSON path of a property (the name must be an identifier).
pub(super) fn json_path(name: &str) -> String {
    format!("$.{name}")
}

/// Parses a where clause into an SQL condition; an empty clause is `None`.
pub fn compile(clause: &str) -> Result<Option<SqlCondition>, ApiError> {
    if clause.trim().is_empty() {
        return Ok(None);
    }
    if clause.len() > MAX_LEN {
        return Err(ApiError::invalid_where("too long"));
    }
    compile_tokens(tokenize(clause)?)
}

/// The aggregate functions of `props` and `having`, lower-cased.
pub(super) const AGGREGATES: &[&str] = &["count", "sum", "avg", "min", "max"];

/// Parses a `having` clause: a where clause whose operands may also be
/// aggregates (`Sum(amount) > 10`). `name_of(function, property)` gives the
/// name under which the query returns that aggregate (its alias); an
/// aggregate the query does not return is 1017. The condition applies to the
/// grouped rows.
pub(super) fn compile_having(
    clause: &str,
    name_of: impl Fn(&str, &str) -> Option<String>,
) -> Result<Option<SqlCondition>, ApiError> {
    if clause.trim().is_empty() {
        return Ok(None);
    }
    if clause.len() > MAX_LEN {
        return Err(ApiError::invalid_where("too long"));
    }
    let tokens = tokenize(clause)?;
    let mut out = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        if let [
            Token::Ident(f),
            Token::LParen,
            Token::Ident(prop),
            Token::RParen,
            ..,
        ] = &tokens[i..]
        {
            let func = f.to_ascii_lowercase();
            if AGGREGATES.contains(&func.as_str()) {
                let name = name_of(&func, prop).ok_or_else(|| {
                    ApiError::invalid_where(format!(
                        "having uses {f}({prop}), which is not among the properties asked for"
                    ))
                })?;
                out.push(Token::Ident(name));
                i += 4;
                continue;
            }
        }
        out.push(tokens[i].clone());
        i += 1;
    }
    compile_tokens(out)
}

fn compile_tokens(tokens: Vec<Token>) -> Result<Option<SqlCondition>, ApiError> {
    let mut parser = Parser {
        tokens,
        pos: 0,
        depth: 0,
        out: SqlCondition {
            sql: String::new(),
            params: Vec::new(),
        },
    };
    parser.expr()?;
    if parser.pos != parser.tokens.len() {
        return Err(ApiError::invalid_where(format!(
            "unexpected {}",
            parser.tokens[parser.pos].describe()
        )));
    }
    Ok(Some(parser.out))
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Str(String),
    Int(i64),
    Float(f64),
    LParen,
    RParen,
    Comma,
    Cmp(&'static str),
}

impl Token {
    fn describe(&self) -> String {
        match self {
            Token::Ident(s) => format!("`{s}`"),
            Token::Str(_) => "a string".to_owned(),
            Token::Int(_) | Token::Float(_) => "a number".to_owned(),
            Token::LParen => "`(`".to_owned(),
            Token::RParen => "`)`".to_owned(),
            Token::Comma => "`,`".to_owned(),
            Token::Cmp(op) => format!("`{op}`"),
        }
    }

    fn is_keyword(&self, kw: &str) -> bool {
        matches!(self, Token::Ident(s) if s.eq_ignore_ascii_case(kw))
    }
}

fn tokenize(input: &str) -> Result<Vec<Token>, ApiError> {
    let chars: Vec<char> = input.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                tokens.push(Token::LParen);
                i += 1;
            }
            ')' => {
                tokens.push(Token::RParen);
                i += 1;
            }
            ',' => {
                tokens.push(Token::Comma);
                i += 1;
            }
            '=' => {
                tokens.push(Token::Cmp("="));
                i += 1;
            }
            '!' if chars.get(i + 1) == Some(&'=') => {
                tokens.push(Token::Cmp("!="));
                i += 2;
            }
            '<' => match chars.get(i + 1) {
                Some('=') => {
                    tokens.push(Token::Cmp("<="));
                    i += 2;
                }
                Some('>') => {
                    tokens.push(Token::Cmp("!="));
                    i += 2;
                }
                _ => {
                    tokens.push(Token::Cmp("<"));
                    i += 1;
                }
            },
            '>' => {
                if chars.get(i + 1) == Some(&'=') {
                    tokens.push(Token::Cmp(">="));
                    i += 2;
                } else {
                    tokens.push(Token::Cmp(">"));
                    i += 1;
                }
            }
            '\'' => {
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(ApiError::invalid_where("unterminated string")),
                        Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                            s.push('\'');
                            i += 2;
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(&ch) => {
                            s.push(ch);
                            i += 1;
                        }
                    }
                }
                tokens.push(Token::Str(s));
            }
            c if c.is_ascii_digit()
                || (c == '-' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
                || (c == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())) =>
            {
                let start = i;
                i += 1;
                while i < chars.len()
                    && (chars[i].is_ascii_digit()
                        || chars[i] == '.'
                        || chars[i] == 'e'
                        || chars[i] == 'E'
                        || ((chars[i] == '-' || chars[i] == '+')
                            && matches!(chars[i - 1], 'e' | 'E')))
                {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                if let Ok(n) = text.parse::<i64>() {
                    tokens.push(Token::Int(n));
                } else {
                    match text.parse::<f64>() {
                        Ok(f) if f.is_finite() => tokens.push(Token::Float(f)),
                        _ => return Err(ApiError::invalid_where(format!("bad number `{text}`"))),
                    }
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                tokens.push(Token::Ident(chars[start..i].iter().collect()));
            }
            other => {
                return Err(ApiError::invalid_where(format!(
                    "unexpected character `{other}`"
                )));
            }
        }
    }
    Ok(tokens)
}

const KEYWORDS: &[&str] = &[
    "and", "or", "not", "in", "like", "is", "null", "true", "false",
];

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
    out: SqlCondition,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Result<Token, ApiError> {
        let t = self
            .tokens
            .get(self.pos)
            .cloned()
            .ok_or_else(|| ApiError::invalid_where("unexpected end"))?;
        self.pos += 1;
        Ok(t)
    }

    fn eat_keyword(&mut self, kw: &str) -> bool {
        if self.peek().is_some_and(|t| t.is_keyword(kw)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect_keyword(&mut self, kw: &str) -> Result<(), ApiError> {
        if self.eat_keyword(kw) {
            Ok(())
        } else {
            Err(ApiError::invalid_where(format!(
                "expected {}",
                kw.to_uppercase()
            )))
        }
    }

    fn expr(&mut self) -> Result<(), ApiError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(ApiError::invalid_where("nested too deeply"));
        }
        self.out.sql.push('(');
        self.and()?;
        while self.eat_keyword("or") {
            self.out.sql.push_str(" OR ");
            self.and()?;
        }
        self.out.sql.push(')');
        self.depth -= 1;
        Ok(())
    }

    fn and(&mut self) -> Result<(), ApiError> {
        self.unary()?;
        while self.eat_keyword("and") {
            self.out.sql.push_str(" AND ");
            self.unary()?;
        }
        Ok(())
    }

    fn unary(&mut self) -> Result<(), ApiError> {
        if self.eat_keyword("not") {
            self.depth += 1;
            if self.depth > MAX_DEPTH {
                return Err(ApiError::invalid_where("nested too deeply"));
            }
            self.out.sql.push_str("NOT (");
            self.unary()?;
            self.out.sql.push(')');
            self.depth -= 1;
            return Ok(());
        }
        if self.peek() == Some(&Token::LParen) {
            self.pos += 1;
            self.expr()?;
            return match self.next()? {
                Token::RParen => Ok(()),
                other => Err(ApiError::invalid_where(format!(
                    "expected `)`, found {}",
                    other.describe()
                ))),
            };
        }
        self.predicate()
    }

    fn column(&mut self, name: &str) {
        self.out.sql.push_str("json_extract(body, ?)");
        self.out.params.push(SqlValue::Text(json_path(name)));
    }

    fn predicate(&mut self) -> Result<(), ApiError> {
        let name = match self.next()? {
            Token::Ident(name) if !KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(&name)) => name,
            other => {
                return Err(ApiError::invalid_where(format!(
                    "expected a property name, found {}",
                    other.describe()
                )));
            }
        };
        if !is_identifier(&name) {
            return Err(ApiError::invalid_where(format!(
                "bad property name `{name}`"
            )));
        }
        match self.next()? {
            Token::Cmp(op) => {
                let value = self.value()?;
                match (value, op) {
                    (None, "=") => {
                        self.column(&name);
                        self.out.sql.push_str(" IS NULL");
                    }
                    (None, "!=") => {
                        self.column(&name);
                        self.out.sql.push_str(" IS NOT NULL");
                    }
                    (None, _) => {
                        return Err(ApiError::invalid_where(format!(
                            "NULL cannot be compared with `{op}`"
                        )));
                    }
                    (Some(v), op) => {
                        self.column(&name);
                        self.out.sql.push(' ');
                        self.out.sql.push_str(op);
                        self.out.sql.push_str(" ?");
                        self.out.params.push(v);
                    }
                }
            }
            t if t.is_keyword("is") => {
                let not = self.eat_keyword("not");
                self.expect_keyword("null")?;
                self.column(&name);
                self.out
                    .sql
                    .push_str(if not { " IS NOT NULL" } else { " IS NULL" });
            }
            t if t.is_keyword("not") || t.is_keyword("like") || t.is_keyword("in") => {
                let not = t.is_keyword("not");
                let op = if not { self.next()? } else { t };
                if op.is_keyword("like") {
                    let pattern = match self.next()? {
                        Token::Str(s) => s,
                        other => {
                            return Err(ApiError::invalid_where(format!(
                                "LIKE needs a string, found {}",
                                other.describe()
                            )));
                        }
                    };
                    self.column(&name);
                    self.out
                        .sql
                        .push_str(if not { " NOT LIKE ?" } else { " LIKE ?" });
                    self.out.params.push(SqlValue::Text(pattern));
                } else if op.is_keyword("in") {
                    if self.next()? != Token::LParen {
                        return Err(ApiError::invalid_where("IN needs `(`"));
                    }
                    let mut values = Vec::new();
                    loop {
                        match self.value()? {
                            Some(v) => values.push(v),
                            None => return Err(ApiError::invalid_where("NULL inside IN")),
                        }
                        match self.next()? {
                            Token::Comma => {}
                            Token::RParen => break,
                            other => {
                                return Err(ApiError::invalid_where(format!(
                                    "expected `,` or `)` in IN, found {}",
                                    other.describe()
                                )));
                            }
                        }
                    }
                    self.column(&name);
                    self.out
                        .sql
                        .push_str(if not { " NOT IN (" } else { " IN (" });
                    for (i, v) in values.into_iter().enumerate() {
                        if i > 0 {
                            self.out.sql.push_str(", ");
                        }
                        self.out.sql.push('?');
                        self.out.params.push(v);
                    }
                    self.out.sql.push(')');
                } else {
                    return Err(ApiError::invalid_where("expected LIKE or IN after NOT"));
                }
            }
            other => {
                return Err(ApiError::invalid_where(format!(
                    "expected an operator after `{name}`, found {}",
                    other.describe()
                )));
            }
        }
        Ok(())
    }

    /// A literal; `None` is NULL.
    fn value(&mut self) -> Result<Option<SqlValue>, ApiError> {
        match self.next()? {
            Token::Str(s) => Ok(Some(SqlValue::Text(s))),
            Token::Int(n) => Ok(Some(SqlValue::Integer(n))),
            Token::Float(f) => Ok(Some(SqlValue::Real(f))),
            t if t.is_keyword("true") => Ok(Some(SqlValue::Integer(1))),
            t if t.is_keyword("false") => Ok(Some(SqlValue::Integer(0))),
            t if t.is_keyword("null") => Ok(None),
            other => Err(ApiError::invalid_where(format!(
                "expected a value, found {}",
                other.describe()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(clause: &str) -> SqlCondition {
        compile(clause).unwrap().unwrap()
    }

    #[test]
    fn values_are_bound_never_pasted() {
        let c = ok("title = 'x''; DROP TABLE objects; --' AND n >= 3");
        assert!(!c.sql.contains("DROP"), "{}", c.sql);
        assert_eq!(
            c.params,
            vec![
                SqlValue::Text("$.title".into()),
                SqlValue::Text("x'; DROP TABLE objects; --".into()),
                SqlValue::Text("$.n".into()),
                SqlValue::Integer(3),
            ]
        );
    }

    #[test]
    fn operators_compile() {
        let c = ok("a <> 1 or not (b in ('x', 2) and c is not null) and d not like 'q%'");
        assert_eq!(
            c.sql,
            "(json_extract(body, ?) != ? OR NOT ((json_extract(body, ?) IN (?, ?) AND json_extract(body, ?) IS NOT NULL)) AND json_extract(body, ?) NOT LIKE ?)"
        );
        assert_eq!(ok("x = null").sql, "(json_extract(body, ?) IS NULL)");
        assert_eq!(ok("x = -1.5e2").params[1], SqlValue::Real(-150.0));
    }

    proptest::proptest! {
        #[test]
        fn never_panics_and_never_pastes_input(s in "\\PC{0,120}") {
            if let Ok(Some(c)) = compile(&s) {
                proptest::prop_assert!(!c.sql.contains('\''));
                proptest::prop_assert_eq!(c.sql.matches('?').count(), c.params.len());
            }
        }

        #[test]
        fn compiled_clauses_run(s in "(a|b|n|not|and|or|in|like|is|null|true| |=|<|>|!|\\(|\\)|,|'x'|'%'|1|2\\.5)*") {
            let store = crate::emulator::store::Store::open(":memory:").unwrap();
            if let Ok(condition) = compile(&s) {
                let q = crate::emulator::store::FindQuery { condition, page_size: 10, ..Default::default() };
                let ran = store.call_sync(|c| crate::emulator::store::find(c, "T", &q));
                proptest::prop_assert!(ran.is_ok(), "{s}: {ran:?}");
            }
        }
    }

    #[test]
    fn garbage_is_1017() {
        for bad in [
            "a =",
            "= 1",
            "a == 1",
            "a = 1;",
            "a = 'open",
            "(a = 1",
            "a = 1)",
            "a in ()",
            "a like 3",
            "and = 1",
            "a = b",
            "a is 1",
            "a > null",
            "a = 1 b = 2",
            "a.b = 1",
            "\"a\" = 1",
        ] {
            assert_eq!(compile(bad).unwrap_err().code, 1017, "{bad}");
        }
        let deep = format!("{}a = 1{}", "(".repeat(500), ")".repeat(500));
        assert_eq!(compile(&deep).unwrap_err().code, 1017);
        let nots = format!("{}a = 1", "not ".repeat(500));
        assert_eq!(compile(&nots).unwrap_err().code, 1017);
    }

    #[test]
    fn having_names_aggregates_by_their_alias() {
        let name_of = |f: &str, p: &str| (f == "sum" && p == "qty").then(|| "total".to_owned());
        let c = compile_having("Sum(qty) > 3 and kind = 'a'", name_of)
            .unwrap()
            .unwrap();
        assert_eq!(c.params[0], SqlValue::Text("$.total".into()));
        assert_eq!(
            compile_having("Avg(qty) > 3", name_of).unwrap_err().code,
            1017
        );
    }
}
