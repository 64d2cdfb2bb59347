//! The hand-written model the server ran before the schema (the old
//! `entity.rs` tables and `validate_data`), kept as the oracle of the
//! equivalence tests in `builtin.rs`: the built-in schema must behave as it.

use serde_json::Value;

use crate::entity::cast::{self, Cast};
use crate::entity::{
    parse_uuid, EntityType, Invalid, ValidData, DESCRIPTION_MAX, NAME_MAX, NOTES_MAX,
    SERVER_FIELDS, TAGS_MAX, TAG_MAX, TITLE_MAX,
};

/// The model's fields, in the order responses list them.
pub fn fields(entity: EntityType) -> &'static [FieldSpec] {
    match entity.as_str() {
        "space" => SPACE,
        "category" => CATEGORY,
        "item" => ITEM,
        other => panic!("not a built-in entity: {other}"),
    }
}

fn field(entity: EntityType, name: &str) -> Option<&'static FieldSpec> {
    fields(entity).iter().find(|f| f.name == name)
}

pub fn is_reference(entity: EntityType, name: &str) -> bool {
    field(entity, name).is_some_and(|f| matches!(f.kind, Kind::Ref(_)))
}

/// What a field may hold. Every field may be `null` (cleared) unless it is required.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A string of at most this many characters (Mongoose `String`: numbers
    /// and booleans are cast to one).
    Text(usize),
    /// Like `Text`, but never cast: a closed vocabulary in the original (a
    /// Mongoose `enum`), which no number's or boolean's text can be part of.
    Label(usize),
    /// A reference to another record of the user (a UUID).
    Ref(&'static str),
    /// A finite number.
    Number,
    Bool,
    /// An ISO-8601 date-time, normalised to `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    DateTime,
    /// A number, or a label of at most 32 characters (apps use both).
    NumberOrLabel,
    /// Up to 100 strings of at most 64 characters each.
    Tags,
}

#[derive(Debug)]
pub struct FieldSpec {
    pub name: &'static str,
    pub kind: Kind,
    /// Must be present (and non-null, non-empty) on create; can't be cleared.
    pub required: bool,
}

const fn f(name: &'static str, kind: Kind, required: bool) -> FieldSpec {
    FieldSpec {
        name,
        kind,
        required,
    }
}

static SPACE: &[FieldSpec] = &[
    f("name", Kind::Text(NAME_MAX), true),
    f("description", Kind::Text(DESCRIPTION_MAX), false),
    f("color", Kind::Text(32), false),
    f("icon", Kind::Text(64), false),
    f("order", Kind::Number, false),
];

static CATEGORY: &[FieldSpec] = &[
    f("spaceId", Kind::Ref("space"), true),
    f("name", Kind::Text(NAME_MAX), true),
    f("description", Kind::Text(DESCRIPTION_MAX), false),
    f("color", Kind::Text(32), false),
    f("icon", Kind::Text(64), false),
    f("order", Kind::Number, false),
];

static ITEM: &[FieldSpec] = &[
    f("spaceId", Kind::Ref("space"), false),
    f("categoryId", Kind::Ref("category"), false),
    f("title", Kind::Text(TITLE_MAX), true),
    f("description", Kind::Text(DESCRIPTION_MAX), false),
    f("notes", Kind::Text(NOTES_MAX), false),
    f("type", Kind::Label(32), false),
    f("movieId", Kind::Text(128), false),
    f("bookId", Kind::Text(128), false),
    f("placeId", Kind::Text(128), false),
    f("isCompleted", Kind::Bool, false),
    f("completedAt", Kind::DateTime, false),
    f("priority", Kind::NumberOrLabel, false),
    f("order", Kind::Number, false),
    f("tags", Kind::Tags, false),
];

/// Validates an operation's `data` for `entity`. On create, required fields
/// must be present; on update, any subset may be.
pub fn validate_data(
    entity: EntityType,
    data: &serde_json::Map<String, Value>,
    is_create: bool,
) -> Result<ValidData, Invalid> {
    let mut out = ValidData::default();
    for (key, value) in data {
        if SERVER_FIELDS.contains(&key.as_str()) {
            out.ignored.push(key.clone());
            continue;
        }
        let Some(spec) = field(entity, key) else {
            out.ignored.push(key.clone());
            continue;
        };
        let v = validate_value(spec, value).map_err(|m| Invalid(format!("{key}: {m}")))?;
        if v.coerced {
            out.coerced.push(key.clone());
        }
        out.fields.insert(key.clone(), v.value);
    }
    // Sorted, so the ack does not depend on the JSON map's key order.
    out.coerced.sort();
    if is_create {
        for spec in fields(entity).iter().filter(|s| s.required) {
            if !out.fields.contains_key(spec.name) {
                return Err(Invalid(format!(
                    "{}: is required to create a {}",
                    spec.name,
                    entity.as_str()
                )));
            }
        }
    }
    Ok(out)
}

/// Casts `v` to the field's type as Mongoose would (see [`cast`]), then
/// applies the field's bounds to the cast value.
fn validate_value(spec: &FieldSpec, v: &Value) -> Result<Cast, String> {
    let cast = match spec.kind {
        _ if v.is_null() => Some(Cast {
            value: Value::Null,
            coerced: false,
        }),
        Kind::Text(_) => cast::string(v),
        Kind::Number => cast::number(v),
        Kind::Bool => cast::boolean(v),
        Kind::DateTime => cast::date(v),
        Kind::Tags => cast_tags(v),
        // Refs must be UUIDs, which no cast number or boolean can be; labels
        // and number-or-label take the JSON types they hold as they are.
        Kind::Ref(_) | Kind::Label(_) | Kind::NumberOrLabel => Some(Cast {
            value: v.clone(),
            coerced: false,
        }),
    };
    let Some(cast) = cast else {
        return Err(refusal(spec.kind).into());
    };
    // A cast may produce null ("" for a number or a date).
    if cast.value.is_null() {
        return if spec.required {
            Err("is required and cannot be null".into())
        } else {
            Ok(cast)
        };
    }
    let v = &cast.value;
    let value = match spec.kind {
        Kind::Text(max) | Kind::Label(max) => {
            let s = v.as_str().ok_or(refusal(spec.kind))?;
            let n = s.chars().count();
            if n > max {
                return Err(format!("must be at most {max} characters"));
            }
            if spec.required && s.trim().is_empty() {
                return Err("must not be empty".into());
            }
            v.clone()
        }
        Kind::Ref(target) => {
            let s = v.as_str().ok_or(refusal(spec.kind))?;
            let id = parse_uuid(s).ok_or_else(|| format!("must be the UUID of a {target}"))?;
            Value::String(id.hyphenated().to_string())
        }
        Kind::Number => match v.as_f64() {
            Some(x) if x.is_finite() => v.clone(),
            _ => return Err(refusal(spec.kind).into()),
        },
        Kind::Bool | Kind::DateTime => v.clone(),
        Kind::NumberOrLabel => match v {
            Value::Number(n) if n.as_f64().is_some_and(f64::is_finite) => v.clone(),
            Value::String(s) if s.chars().count() <= 32 => v.clone(),
            _ => return Err(refusal(spec.kind).into()),
        },
        Kind::Tags => {
            let arr = v.as_array().ok_or(refusal(spec.kind))?;
            if arr.len() > TAGS_MAX {
                return Err(format!("at most {TAGS_MAX} tags"));
            }
            for t in arr {
                let s = t.as_str().ok_or(refusal(spec.kind))?;
                if s.chars().count() > TAG_MAX {
                    return Err(format!("each tag at most {TAG_MAX} characters"));
                }
            }
            v.clone()
        }
    };
    Ok(Cast {
        value,
        coerced: cast.coerced,
    })
}

/// Tags are a Mongoose `[String]`: each element is cast as a string, and a
/// single non-array value is wrapped into a one-element array (Mongoose's
/// `castNonArrays`, on by default). A `null` element is refused: a tag is text.
fn cast_tags(v: &Value) -> Option<Cast> {
    let (elements, mut coerced) = match v {
        Value::Array(a) => (a.as_slice(), false),
        other => (std::slice::from_ref(other), true),
    };
    let mut out = Vec::with_capacity(elements.len());
    for e in elements {
        if e.is_null() {
            return None;
        }
        let c = cast::string(e)?;
        coerced |= c.coerced;
        out.push(c.value);
    }
    Some(Cast {
        value: Value::Array(out),
        coerced,
    })
}

fn refusal(kind: Kind) -> &'static str {
    match kind {
        Kind::Text(_) => "must be a string (a number or a boolean is cast to one)",
        Kind::Label(_) => "must be a string",
        Kind::Ref(_) => "must be a UUID string",
        Kind::Number => "must be a number or a numeric string",
        Kind::Bool => {
            "must be true, false, \"true\", \"false\", 1, 0, \"1\", \"0\", \"yes\" or \"no\""
        }
        Kind::DateTime => "must be an ISO-8601 date-time string or epoch milliseconds",
        Kind::NumberOrLabel => "must be a number or a label of at most 32 characters",
        Kind::Tags => "must be an array of strings (numbers and booleans are cast to strings)",
    }
}
