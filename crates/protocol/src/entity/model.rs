//! A loaded schema as the engine, the stores and the wire use it.
//!
//! Tests run many servers in one process, some with another schema than
//! the built-in, so the model is per server ([`Model`], held by whoever
//! needs it from construction), not a global. A collection is named by an
//! [`EntityType`]: a pointer to what the engine asks of it on every
//! operation (its references, its fields in order, whether it is a sharing
//! root), computed once when the schema is loaded. Models are interned for
//! the life of the process (a server keeps its model until it exits, and a
//! schema loaded again reuses the first copy), so a handle is `Copy` and
//! `'static`, and no request clones a schema or allocates to look a field up.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::{Mutex, OnceLock};

use serde::{Deserialize, Serialize};

use crate::schema::Schema;

/// One collection of a loaded model. Equal, ordered and hashed by name, as
/// the enum it replaces was by variant.
#[derive(Clone, Copy)]
pub struct EntityType(&'static Slot);

/// The interned collection a handle points to. The built-in's three are
/// statics, so that [`EntityType::Space`] and its siblings are constants;
/// their [`Info`] is filled when the built-in model is first loaded.
pub struct Slot {
    name: &'static str,
    info: OnceLock<Info>,
}

struct Info {
    model: Model,
    plural: &'static str,
    shareable: bool,
    /// Position in the model's order (parents first).
    index: usize,
    /// Property names in file order: the order responses list them in.
    fields: Vec<&'static str>,
    /// Its `x-references` properties, in file order.
    references: Vec<Reference>,
    /// Whether some collection's `x-parent` points to this one.
    has_children: bool,
}

/// A property holding the id of a record of `target` (`x-references`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reference {
    pub field: &'static str,
    pub target: EntityType,
    /// `x-parent`: deleting the target deletes the record; a tombstone
    /// keeps it.
    pub parent: bool,
}

static SPACE: Slot = Slot::new("space");
static CATEGORY: Slot = Slot::new("category");
static ITEM: Slot = Slot::new("item");

impl Slot {
    const fn new(name: &'static str) -> Slot {
        Slot {
            name,
            info: OnceLock::new(),
        }
    }
}

#[allow(non_upper_case_globals)]
impl EntityType {
    /// The built-in model's collections, by the names the code has always
    /// used for them (the import and the bench work on the built-in).
    pub const Space: EntityType = EntityType(&SPACE);
    pub const Category: EntityType = EntityType(&CATEGORY);
    pub const Item: EntityType = EntityType(&ITEM);
}

impl EntityType {
    /// The collection's name: its records' `entityType` and `kind`.
    pub fn as_str(self) -> &'static str {
        self.0.name
    }

    fn info(self) -> &'static Info {
        match self.0.info.get() {
            Some(info) => info,
            None => {
                // Only the built-in's statics are ever read before they are
                // filled: loading the built-in fills them.
                Model::builtin();
                self.0
                    .info
                    .get()
                    .expect("the built-in model fills its slots")
            }
        }
    }

    /// A collection of the built-in model, by name.
    pub fn parse(s: &str) -> Option<EntityType> {
        Model::builtin().collection(s)
    }

    pub fn model(self) -> Model {
        self.info().model
    }

    /// The name of its array in `serverUpdates` and in initial-sync pages.
    pub fn plural(self) -> &'static str {
        self.info().plural
    }

    /// A sharing root (`shareable`), as a space is.
    pub fn is_shareable(self) -> bool {
        self.info().shareable
    }

    /// Its position in the model's order, parents first.
    pub fn index(self) -> usize {
        self.info().index
    }

    /// The collection's fields, in the order responses list them.
    pub fn fields(self) -> &'static [&'static str] {
        &self.info().fields
    }

    /// Its `x-references` properties, in file order.
    pub fn references(self) -> &'static [Reference] {
        &self.info().references
    }

    /// Its `x-parent` references: the records it hangs under.
    pub fn parents(self) -> impl Iterator<Item = &'static Reference> {
        self.references().iter().filter(|r| r.parent)
    }

    /// Whether records of some collection hang under its records: a delete
    /// of one cascades.
    pub fn has_children(self) -> bool {
        self.info().has_children
    }

    /// Whether `name` is one of the references that place a record (its
    /// parents' ids): what a tombstone keeps.
    pub fn is_reference(self, name: &str) -> bool {
        self.parents().any(|r| r.field == name)
    }
}

impl PartialEq for EntityType {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self.0, other.0) || self.0.name == other.0.name
    }
}

impl Eq for EntityType {}

impl Hash for EntityType {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.name.hash(state);
    }
}

impl PartialOrd for EntityType {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for EntityType {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.name.cmp(other.0.name)
    }
}

impl fmt::Debug for EntityType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.name)
    }
}

impl fmt::Display for EntityType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.name)
    }
}

impl Serialize for EntityType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.name)
    }
}

/// Clients (the Rust client, the bench, tests) read the built-in model.
impl<'de> Deserialize<'de> for EntityType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        EntityType::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown entityType {s:?}: expected {}",
                Model::builtin().choices()
            ))
        })
    }
}

// By hand: the built-in's names, as the derive on the enum listed them.
impl utoipa::PartialSchema for EntityType {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
        let names = Model::builtin().collections().iter().map(|e| e.as_str());
        let object = ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(names))
            .build();
        utoipa::openapi::RefOr::T(Schema::Object(object))
    }
}

impl utoipa::ToSchema for EntityType {}

/// A loaded schema: its collections as [`EntityType`]s, and the schema
/// that validates their records. `Copy`: hold it, pass it, never clone the
/// schema.
#[derive(Clone, Copy)]
pub struct Model(&'static ModelInner);

struct ModelInner {
    schema: &'static Schema,
    /// Parents first ([`Schema::parents_first`]): the order of the arrays
    /// of `serverUpdates`.
    collections: Vec<EntityType>,
    /// "space, category or item", for the refusal of an unknown type.
    choices: String,
}

impl PartialEq for Model {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self.0, other.0)
    }
}

impl Eq for Model {}

impl fmt::Debug for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Model").field(&self.0.collections).finish()
    }
}

impl Default for Model {
    fn default() -> Model {
        Model::builtin()
    }
}

impl Model {
    /// The built-in bucket list ([`Schema::builtin`]), loaded once.
    pub fn builtin() -> Model {
        static BUILTIN: OnceLock<Model> = OnceLock::new();
        *BUILTIN.get_or_init(|| build(Schema::builtin(), true))
    }

    /// The model of `schema`. Loading a schema equal to one loaded before
    /// returns that model: each distinct schema is built (and kept) once.
    pub fn load(schema: Schema) -> Model {
        let builtin = Model::builtin();
        if &schema == builtin.schema() {
            return builtin;
        }
        static LOADED: Mutex<Vec<Model>> = Mutex::new(Vec::new());
        let mut loaded = LOADED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(m) = loaded.iter().find(|m| m.schema() == &schema) {
            return *m;
        }
        let m = build(Box::leak(Box::new(schema)), false);
        loaded.push(m);
        m
    }

    pub fn schema(self) -> &'static Schema {
        self.0.schema
    }

    /// Its collections, parents first (the built-in: space, category, item).
    pub fn collections(self) -> &'static [EntityType] {
        &self.0.collections
    }

    /// The collection named `name`; `None` for a name the model lacks.
    pub fn collection(self, name: &str) -> Option<EntityType> {
        self.0
            .collections
            .iter()
            .find(|e| e.as_str() == name)
            .copied()
    }

    /// The collections' names as a refusal lists them: "space, category or item".
    pub fn choices(self) -> &'static str {
        &self.0.choices
    }

    pub fn is_builtin(self) -> bool {
        self == Model::builtin()
    }
}

fn build(schema: &'static Schema, builtin: bool) -> Model {
    let order = schema.parents_first();
    let collections: Vec<EntityType> = order
        .iter()
        .map(|name| {
            let slot: &'static Slot = match (builtin, *name) {
                (true, "space") => &SPACE,
                (true, "category") => &CATEGORY,
                (true, "item") => &ITEM,
                _ => Box::leak(Box::new(Slot::new(name))),
            };
            EntityType(slot)
        })
        .collect();
    let choices = match order.split_last() {
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    };
    let inner: &'static ModelInner = Box::leak(Box::new(ModelInner {
        schema,
        collections,
        choices,
    }));
    let model = Model(inner);
    let find = |name: &str| {
        model
            .collection(name)
            .expect("a checked schema's references")
    };
    for (index, e) in inner.collections.iter().enumerate() {
        let c = schema.collection(e.as_str()).expect("listed by the schema");
        let references = c
            .properties
            .iter()
            .filter_map(|(field, p)| {
                p.references.as_deref().map(|target| Reference {
                    field: field.as_str(),
                    target: find(target),
                    parent: p.parent,
                })
            })
            .collect();
        let has_children = schema
            .collections
            .values()
            .any(|other| other.parents().any(|(_, target)| target == e.as_str()));
        let info = Info {
            model,
            plural: c.plural.as_str(),
            shareable: c.shareable,
            index,
            fields: c.properties.iter().map(|(n, _)| n.as_str()).collect(),
            references,
            has_children,
        };
        if e.0.info.set(info).is_err() {
            unreachable!("a slot is filled once, by the model that made it");
        }
    }
    model
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOTES: &str = include_str!("../../schema/notes.json");

    #[test]
    fn the_builtin_names_its_collections_parents_first() {
        let m = Model::builtin();
        let names: Vec<&str> = m.collections().iter().map(|e| e.as_str()).collect();
        assert_eq!(names, ["space", "category", "item"]);
        assert_eq!(m.choices(), "space, category or item");
        assert_eq!(m.collection("item"), Some(EntityType::Item));
        assert_eq!(EntityType::Item.plural(), "items");
        assert!(EntityType::Space.is_shareable() && !EntityType::Item.is_shareable());
        assert!(EntityType::Category.has_children() && !EntityType::Item.has_children());
        assert!(EntityType::Item.is_reference("categoryId"));
        assert!(!EntityType::Item.is_reference("title"));
        let refs: Vec<(&str, EntityType)> = EntityType::Item
            .references()
            .iter()
            .map(|r| (r.field, r.target))
            .collect();
        assert_eq!(
            refs,
            [
                ("spaceId", EntityType::Space),
                ("categoryId", EntityType::Category)
            ]
        );
        assert_eq!(Model::load(Schema::builtin().clone()), m);
    }

    #[test]
    fn another_schema_is_a_model_of_its_own_loaded_once() {
        let a = Model::load(Schema::parse(NOTES).unwrap());
        let b = Model::load(Schema::parse(NOTES).unwrap());
        assert_eq!(a, b, "interned");
        assert_ne!(a, Model::builtin());
        let names: Vec<&str> = a.collections().iter().map(|e| e.as_str()).collect();
        assert_eq!(names, ["notebook", "note", "checkItem"]);
        let check = a.collection("checkItem").unwrap();
        assert_eq!(check.model(), a);
        assert_eq!(check.references()[0].target.as_str(), "note");
        assert!(a.collection("note").unwrap().has_children());
        assert!(a.collection("item").is_none());
        assert_eq!(a.choices(), "notebook, note or checkItem");
    }
}
