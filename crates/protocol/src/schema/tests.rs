mod builtin;
mod evolve;
mod openapi;
mod records;
mod rules;
