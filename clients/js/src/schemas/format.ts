// The shape of a declared schema document (docs/SCHEMA.md), as the client
// reads it: the keywords it uses; the server checks the rest.

/** One property of a collection (the keywords the client uses; the server checks the rest). */
export interface SchemaProperty {
  type: string | string[];
  enum?: unknown[];
  items?: SchemaProperty;
  format?: string;
  description?: string;
  'x-references'?: string;
  'x-parent'?: boolean;
  [keyword: string]: unknown;
}

export interface SchemaCollection {
  plural: string;
  shareable?: boolean;
  properties: Record<string, SchemaProperty>;
  required?: string[];
  description?: string;
  [keyword: string]: unknown;
}

/** A parsed schema document, as `GET /api/schema` serves it. */
export interface Schema {
  collections: Record<string, SchemaCollection>;
  title?: string;
  description?: string;
  [keyword: string]: unknown;
}
