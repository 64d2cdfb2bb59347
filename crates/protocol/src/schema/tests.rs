mod builtin;
mod legacy;
mod evolve;
mod openapi;
mod records;
mod rules;
