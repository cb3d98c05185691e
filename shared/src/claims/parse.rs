//! The parser: claim values into nodes, shortcodes into expressions.

use serde_json::{Number, Value};

use super::{Expr, Node, Operand, Part};

/// A claims document that does not parse, with where (a JSON path) and why.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("claims.{path}: {reason}")]
pub struct TemplateError {
    pub path: String,
    pub reason: String,
}

fn error(path: &str, reason: impl Into<String>) -> TemplateError {
    TemplateError {
        path: path.to_string(),
        reason: reason.into(),
    }
}

pub(super) fn node(value: &Value, path: &str) -> Result<Node, TemplateError> {
    Ok(match value {
        Value::String(s) => string(s, path)?,
        Value::Array(items) => {
            let nodes: Vec<Node> = items
                .iter()
                .enumerate()
                .map(|(i, v)| node(v, &format!("{path}[{i}]")))
                .collect::<Result<_, _>>()?;
            if nodes.iter().all(|n| matches!(n, Node::Literal(_))) {
                Node::Literal(value.clone())
            } else {
                Node::Array(nodes)
            }
        }
        Value::Object(map) => {
            let mut nodes = Vec::with_capacity(map.len());
            for (k, v) in map {
                nodes.push((k.clone(), node(v, &format!("{path}.{k}"))?));
            }
            if nodes.iter().all(|(_, n)| matches!(n, Node::Literal(_))) {
                Node::Literal(value.clone())
            } else {
                Node::Object(nodes)
            }
        }
        other => Node::Literal(other.clone()),
    })
}

fn string(s: &str, path: &str) -> Result<Node, TemplateError> {
    let mut parts = Vec::new();
    let mut rest = s;
    let mut offset = 0;
    while let Some(start) = rest.find("{{") {
        if start > 0 {
            parts.push(Part::Text(rest[..start].to_string()));
        }
        let inner_start = start + 2;
        let Some(len) = rest[inner_start..].find("}}") else {
            return Err(error(
                path,
                format!(
                    "shortcode opened at character {} is not closed with }}}}",
                    offset + start
                ),
            ));
        };
        let inner = &rest[inner_start..inner_start + len];
        let expr = expression(inner).map_err(|why| {
            error(
                path,
                format!("shortcode at character {}: {why}", offset + start),
            )
        })?;
        parts.push(Part::Expr(expr));
        let consumed = inner_start + len + 2;
        offset += consumed;
        rest = &rest[consumed..];
    }
    if !rest.is_empty() {
        parts.push(Part::Text(rest.to_string()));
    }
    Ok(match parts.as_slice() {
        [] => Node::Literal(Value::String(String::new())),
        [Part::Text(_)] => Node::Literal(Value::String(s.to_string())),
        [Part::Expr(e)] => Node::Whole(e.clone()),
        _ => Node::Text(parts),
    })
}

/// `operand (|| operand)*`
fn expression(inner: &str) -> Result<Expr, String> {
    let mut operands = Vec::new();
    let mut rest = inner.trim_start();
    loop {
        let (operand, after) = operand(rest)?;
        operands.push(operand);
        rest = after.trim_start();
        if rest.is_empty() {
            return Ok(Expr(operands));
        }
        rest = rest
            .strip_prefix("||")
            .ok_or_else(|| format!("expected `||` or the end of the shortcode, found `{rest}`"))?
            .trim_start();
    }
}

fn operand(s: &str) -> Result<(Operand, &str), String> {
    if s.is_empty() {
        return Err("expected a value".into());
    }
    if let Some(body) = s.strip_prefix('\'') {
        let end = body
            .find('\'')
            .ok_or("a string literal is not closed with '")?;
        return Ok((
            Operand::Literal(Value::String(body[..end].to_string())),
            &body[end + 1..],
        ));
    }
    if s.starts_with('"') {
        return Err("string literals take single quotes".into());
    }
    let end = s
        .find(|c: char| c.is_whitespace() || c == '|')
        .unwrap_or(s.len());
    let (token, rest) = s.split_at(end);
    if token.is_empty() {
        return Err("expected a value".into());
    }
    if token == "true" || token == "false" {
        return Ok((Operand::Literal(Value::Bool(token == "true")), rest));
    }
    if token.starts_with(|c: char| c.is_ascii_digit() || c == '-') {
        let number: Number = token
            .parse()
            .map_err(|_| format!("`{token}` is not a number"))?;
        return Ok((Operand::Literal(Value::Number(number)), rest));
    }
    let segments: Vec<String> = token.split('.').map(str::to_string).collect();
    let valid = |seg: &String| {
        !seg.is_empty()
            && seg
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    if segments.len() < 2
        || !segments.iter().all(valid)
        || !segments[0].starts_with(|c: char| c.is_ascii_alphabetic())
    {
        return Err(format!(
            "`{token}` is not a shortcode such as user.first_name, or a literal"
        ));
    }
    Ok((Operand::Path(segments), rest))
}
