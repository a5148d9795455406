//! Tables tagged by a key (`{ kind = "poisson", rate = 8 }`), read so that an error in
//! one of their fields names the field.
//!
//! serde's internally tagged enums buffer the table and lose the key path inside it:
//! `workload.arrival: invalid type: string "fast", expected f64`, without saying which
//! key. Here the enum keeps serde's default (external) tagging, and the table is
//! rewritten as `{ poisson = { rate = 8 } }` and read with a path tracker, so the error
//! says `` `rate`: invalid type … ``. The table is held as a `toml::Value`, which keeps
//! `inf` and `nan` for the checks that refuse them (a JSON value would turn them into
//! null).

use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Deserializer};
use toml::Value;

/// Reads a table tagged by `tag` into the externally tagged enum `T`.
pub fn read<'de, D, T>(d: D, tag: &'static str) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    let Value::Table(mut fields) = Value::deserialize(d)? else {
        return Err(de::Error::custom(format!(
            "expected a table with `{tag}` naming its kind"
        )));
    };
    let kind = match fields.remove(tag) {
        Some(Value::String(kind)) => kind,
        Some(other) => {
            return Err(de::Error::custom(format!(
                "`{tag}` must be a string naming the kind, not {other}"
            )));
        }
        None => return Err(de::Error::missing_field(tag)),
    };
    let keys: Vec<String> = fields.keys().map(|k| format!("`{k}`")).collect();
    let tagged = Value::Table([(kind.clone(), Value::Table(fields))].into_iter().collect());
    let error = match serde_path_to_error::deserialize::<_, T>(tagged) {
        Ok(value) => return Ok(value),
        Err(e) => describe(e, tag),
    };
    // A kind without fields (`{ kind = "batch" }`) is a unit variant.
    match T::deserialize(Value::String(kind.clone())) {
        Ok(value) if keys.is_empty() => Ok(value),
        Ok(_) => Err(de::Error::custom(format!(
            "{tag} \"{kind}\" takes no other keys: remove {}",
            keys.join(", ")
        ))),
        Err(_) => Err(de::Error::custom(error)),
    }
}

/// `deserialize_with` for tables tagged by `kind`.
pub fn kind<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<T, D::Error> {
    read(d, "kind")
}

/// `deserialize_with` for tables tagged by `policy`.
pub fn policy<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<T, D::Error> {
    read(d, "policy")
}

/// The error with the path inside the variant (`rate`, `stages[1].rate`), or naming the
/// tag when the kind itself is unknown.
fn describe(e: serde_path_to_error::Error<toml::de::Error>, tag: &str) -> String {
    use serde_path_to_error::Segment;
    // The first segment is the variant, which the user wrote as the tag's value.
    let within: String = e
        .path()
        .iter()
        .skip(1)
        .map(|segment| match segment {
            Segment::Seq { index } => format!("[{index}]"),
            Segment::Map { key } => format!(".{key}"),
            Segment::Enum { variant } => format!(".{variant}"),
            Segment::Unknown => ".?".into(),
        })
        .collect();
    let inner = e.into_inner().message().to_string();
    match within.trim_start_matches('.') {
        "" if inner.starts_with("unknown variant") => format!("`{tag}`: {inner}"),
        "" => inner,
        within => format!("`{within}`: {inner}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(rename_all = "snake_case", deny_unknown_fields)]
    enum Shape {
        Dot,
        Circle { radius: f64 },
        Path { points: Vec<Point> },
    }

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Point {
        x: f64,
    }

    #[derive(Debug, Deserialize)]
    struct Doc {
        #[serde(deserialize_with = "shape")]
        shape: Shape,
    }

    fn shape<'de, D: Deserializer<'de>>(d: D) -> Result<Shape, D::Error> {
        read(d, "kind")
    }

    fn parse(src: &str) -> Result<Shape, String> {
        toml::from_str::<Doc>(src)
            .map(|d| d.shape)
            .map_err(|e| e.message().to_string())
    }

    #[test]
    fn kinds_with_fields_without_fields_and_nested() {
        assert_eq!(parse(r#"shape = { kind = "dot" }"#), Ok(Shape::Dot));
        assert_eq!(
            parse(r#"shape = { kind = "circle", radius = 2 }"#),
            Ok(Shape::Circle { radius: 2.0 })
        );
        assert_eq!(
            parse(r#"shape = { kind = "path", points = [{ x = 1 }] }"#),
            Ok(Shape::Path {
                points: vec![Point { x: 1.0 }]
            })
        );
    }

    #[test]
    fn non_finite_numbers_reach_the_checks_that_refuse_them() {
        assert_eq!(
            parse(r#"shape = { kind = "circle", radius = inf }"#),
            Ok(Shape::Circle {
                radius: f64::INFINITY
            })
        );
    }

    #[test]
    fn errors_name_the_field_inside_the_table() {
        let error = parse(r#"shape = { kind = "circle", radius = "big" }"#).unwrap_err();
        assert_eq!(
            error,
            "`radius`: invalid type: string \"big\", expected f64"
        );
        let error =
            parse(r#"shape = { kind = "path", points = [{ x = 1 }, { x = "a" }] }"#).unwrap_err();
        assert!(error.starts_with("`points[1].x`: invalid type"), "{error}");
        let error = parse(r#"shape = { kind = "circle" }"#).unwrap_err();
        assert_eq!(error, "missing field `radius`");
        let error = parse(r#"shape = { kind = "circle", radius = 1, r = 2 }"#).unwrap_err();
        assert!(
            error.starts_with("`r`: unknown field `r`, expected `radius`"),
            "{error}"
        );
        let error = parse(r#"shape = { kind = "square" }"#).unwrap_err();
        assert!(
            error.starts_with("`kind`: unknown variant `square`, expected one of `dot`"),
            "{error}"
        );
        let error = parse(r#"shape = { kind = "dot", radius = 1 }"#).unwrap_err();
        assert_eq!(error, "kind \"dot\" takes no other keys: remove `radius`");
        let error = parse(r#"shape = { radius = 1 }"#).unwrap_err();
        assert_eq!(error, "missing field `kind`");
    }
}
