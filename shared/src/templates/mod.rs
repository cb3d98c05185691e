//! Clerk's JWT-template claims language: parsed once into [`Claims`], rendered per token.
//!
//! - A string value may hold shortcodes: `{{user.first_name}}`, `{{user.public_metadata.a.b}}`.
//! - A value that is only a shortcode keeps the JSON type of what it names; a shortcode
//!   mixed with text renders as a string, with null printed as `null`.
//! - `{{a || b || 'literal'}}` yields the first operand that is neither null nor false,
//!   else the last operand. Literals: single-quoted strings, numbers, `true`, `false`.
//! - Unknown or missing values are null. Keys are never interpreted.

mod parse;

use serde_json::{Map, Value};

pub use parse::TemplateError;

/// A parsed claims document.
#[derive(Clone, Debug, PartialEq)]
pub struct Claims(Vec<(String, Node)>);

#[derive(Clone, Debug, PartialEq)]
enum Node {
    /// A value without shortcodes, kept as it is.
    Literal(Value),
    /// A string that is exactly one shortcode: keeps the type of its value.
    Whole(Expr),
    /// Text with shortcodes in it: always a string.
    Text(Vec<Part>),
    Array(Vec<Node>),
    Object(Vec<(String, Node)>),
}

#[derive(Clone, Debug, PartialEq)]
enum Part {
    Text(String),
    Expr(Expr),
}

/// `a || b || 'c'`: one or more operands.
#[derive(Clone, Debug, PartialEq)]
struct Expr(Vec<Operand>);

#[derive(Clone, Debug, PartialEq)]
enum Operand {
    /// A dotted path such as `user.public_metadata.plan`.
    Path(Vec<String>),
    Literal(Value),
}

/// What shortcodes can name: `user`, `session`, `org`, `org_membership` objects.
pub trait Context {
    /// The value at `path` (its first segment names the object); `None` when unknown.
    fn lookup(&self, path: &[String]) -> Option<Value>;
}

impl Claims {
    /// Parses a claims document; errors say where (a JSON path) and why.
    pub fn parse(claims: &Map<String, Value>) -> Result<Self, TemplateError> {
        let mut out = Vec::with_capacity(claims.len());
        for (key, value) in claims {
            out.push((key.clone(), parse::node(value, key)?));
        }
        Ok(Claims(out))
    }

    pub fn render(&self, ctx: &dyn Context) -> Map<String, Value> {
        self.0
            .iter()
            .map(|(k, n)| (k.clone(), render(n, ctx)))
            .collect()
    }
}

fn render(node: &Node, ctx: &dyn Context) -> Value {
    match node {
        Node::Literal(v) => v.clone(),
        Node::Whole(expr) => evaluate(expr, ctx),
        Node::Text(parts) => {
            let mut out = String::new();
            for part in parts {
                match part {
                    Part::Text(t) => out.push_str(t),
                    Part::Expr(e) => match evaluate(e, ctx) {
                        Value::String(s) => out.push_str(&s),
                        other => out.push_str(&other.to_string()),
                    },
                }
            }
            Value::String(out)
        }
        Node::Array(items) => Value::Array(items.iter().map(|n| render(n, ctx)).collect()),
        Node::Object(map) => Value::Object(
            map.iter()
                .map(|(k, n)| (k.clone(), render(n, ctx)))
                .collect(),
        ),
    }
}

fn evaluate(expr: &Expr, ctx: &dyn Context) -> Value {
    let mut last = Value::Null;
    for operand in &expr.0 {
        last = match operand {
            Operand::Literal(v) => v.clone(),
            Operand::Path(path) => ctx.lookup(path).unwrap_or(Value::Null),
        };
        if !matches!(last, Value::Null | Value::Bool(false)) {
            return last;
        }
    }
    last
}

/// Follows `rest` into a JSON value (metadata paths); missing keys are `None`.
pub fn dig(value: &Value, rest: &[String]) -> Option<Value> {
    let mut current = value;
    for key in rest {
        current = current.as_object()?.get(key)?;
    }
    Some(current.clone())
}

#[cfg(test)]
mod tests;
