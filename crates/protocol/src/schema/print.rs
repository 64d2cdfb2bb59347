//! A schema written back as a document (`tidesync schema print`, later
//! `GET /api/schema`): keywords in a fixed order, properties in file order,
//! defaults (`"shareable": false`, `"x-parent": false`) left out. Reading
//! the output gives the same [`Schema`] back.

use serde::ser::{Serialize, SerializeMap, Serializer};

use super::{Collection, Property, Schema};

impl Serialize for Schema {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        if let Some(d) = &self.dialect {
            m.serialize_entry("$schema", d)?;
        }
        annotations(&mut m, &self.title, &self.description)?;
        m.serialize_entry("collections", &self.collections)?;
        m.end()
    }
}

impl Serialize for Collection {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        annotations(&mut m, &self.title, &self.description)?;
        m.serialize_entry("plural", &self.plural)?;
        if self.shareable {
            m.serialize_entry("shareable", &true)?;
        }
        m.serialize_entry("properties", &Ordered(&self.properties))?;
        if !self.required.is_empty() {
            m.serialize_entry("required", &self.required)?;
        }
        m.end()
    }
}

/// Properties as an object whose keys keep their order.
struct Ordered<'a>(&'a [(String, Property)]);

impl Serialize for Ordered<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (name, p) in self.0 {
            m.serialize_entry(name, p)?;
        }
        m.end()
    }
}

impl Serialize for Property {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        annotations(&mut m, &self.title, &self.description)?;
        let types: Vec<&str> = self.types.iter().map(|t| t.as_str()).collect();
        match types[..] {
            [one] => m.serialize_entry("type", one)?,
            _ => m.serialize_entry("type", &types)?,
        }
        if let Some(f) = self.format {
            m.serialize_entry("format", f.as_str())?;
        }
        if let Some(n) = self.max_length {
            m.serialize_entry("maxLength", &n)?;
        }
        if let Some(n) = &self.minimum {
            m.serialize_entry("minimum", n)?;
        }
        if let Some(n) = &self.maximum {
            m.serialize_entry("maximum", n)?;
        }
        if let Some(values) = &self.enumeration {
            m.serialize_entry("enum", values)?;
        }
        if let Some(items) = &self.items {
            m.serialize_entry("items", items)?;
        }
        if let Some(n) = self.max_items {
            m.serialize_entry("maxItems", &n)?;
        }
        if let Some(r) = &self.references {
            m.serialize_entry("x-references", r)?;
        }
        if self.parent {
            m.serialize_entry("x-parent", &true)?;
        }
        if self.cast {
            m.serialize_entry("x-cast", &true)?;
        }
        m.end()
    }
}

fn annotations<M: SerializeMap>(
    m: &mut M,
    title: &Option<String>,
    description: &Option<String>,
) -> Result<(), M::Error> {
    if let Some(t) = title {
        m.serialize_entry("title", t)?;
    }
    if let Some(d) = description {
        m.serialize_entry("description", d)?;
    }
    Ok(())
}
