mod builtin;
mod legacy;
mod records;
mod rules;
