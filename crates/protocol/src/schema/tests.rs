mod builtin;
mod records;
mod rules;
