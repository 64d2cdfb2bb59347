//! What an import did, and why each left-out document was left out.

use std::collections::BTreeMap;
use std::fmt;

use crate::Collection;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub imported: u64,
    pub present: u64,
    pub skipped: u64,
}

/// Documents left out for one reason, with a few of them named.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Skip {
    pub count: u64,
    pub examples: Vec<String>,
}

const EXAMPLES: usize = 3;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Per collection, in [`Collection::ALL`] order.
    pub counts: [Counts; 5],
    /// By `"<collection>: <reason>"`.
    pub skipped: BTreeMap<String, Skip>,
    /// Keys not stored, by `"<collection>.<key>"`: external metadata (a
    /// movie's poster, overview, …) and anything that is not a field of
    /// the entity.
    pub stripped: BTreeMap<String, u64>,
    /// Values cast to their field's type, by `"<collection>.<field>"`.
    pub cast: BTreeMap<String, u64>,
    /// Live records under a deleted space or category, imported deleted
    /// (tidesync's deletes cascade).
    pub cascaded: u64,
    /// Nothing was written: `imported` counts what would be.
    pub dry_run: bool,
    /// What was read from each file.
    pub files: Vec<String>,
}

impl Summary {
    pub fn count(&mut self, c: Collection) -> &mut Counts {
        &mut self.counts[c.index()]
    }

    pub fn skip(&mut self, c: Collection, reason: &str, example: impl FnOnce() -> String) {
        self.count(c).skipped += 1;
        let s = self
            .skipped
            .entry(format!("{}: {reason}", c.name()))
            .or_default();
        s.count += 1;
        if s.examples.len() < EXAMPLES {
            s.examples.push(example());
        }
    }

    pub fn strip(&mut self, c: Collection, key: &str) {
        *self
            .stripped
            .entry(format!("{}.{key}", c.name()))
            .or_default() += 1;
    }

    pub fn note_cast(&mut self, c: Collection, field: &str) {
        *self
            .cast
            .entry(format!("{}.{field}", c.name()))
            .or_default() += 1;
    }

    /// Whether anything was (or, dry, would be) written.
    pub fn changed(&self) -> bool {
        self.counts.iter().any(|c| c.imported > 0)
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.dry_run {
            "to import"
        } else {
            "imported"
        };
        writeln!(
            f,
            "{}",
            if self.dry_run {
                "import summary (dry run: nothing written)"
            } else {
                "import summary"
            }
        )?;
        for line in &self.files {
            writeln!(f, "  read {line}")?;
        }
        for c in Collection::ALL {
            let n = self.counts[c.index()];
            writeln!(
                f,
                "  {:<11} {} {verb}, {} already present, {} skipped",
                format!("{}:", c.name()),
                n.imported,
                n.present,
                n.skipped
            )?;
        }
        if !self.skipped.is_empty() {
            writeln!(f, "skipped:")?;
            for (reason, s) in &self.skipped {
                writeln!(
                    f,
                    "  {reason}: {} (e.g. {})",
                    s.count,
                    s.examples.join("; ")
                )?;
            }
        }
        if !self.stripped.is_empty() {
            writeln!(
                f,
                "stripped (not stored: not a field of the entity, e.g. external metadata):"
            )?;
            for (key, n) in &self.stripped {
                writeln!(f, "  {key}: {n}")?;
            }
        }
        if !self.cast.is_empty() {
            writeln!(f, "cast to the field's type (as Mongoose casts):")?;
            for (key, n) in &self.cast {
                writeln!(f, "  {key}: {n}")?;
            }
        }
        if self.cascaded > 0 {
            writeln!(
                f,
                "imported deleted because their space or category is deleted: {}",
                self.cascaded
            )?;
        }
        if !self.changed() {
            writeln!(
                f,
                "nothing {verb}: the database already holds everything valid in this export"
            )?;
        }
        Ok(())
    }
}
