mod builtin;
mod evolve;
mod legacy;
mod openapi;
mod records;
mod rules;
