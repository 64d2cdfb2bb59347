// The built-in default schema, the bucket list: crates/protocol/schema/bucket-list.json as a module
// (a unit test checks they are equal: test/schema.test.ts).

import type { Schema } from './format.js';

export const bucketList: Schema = {
  "title": "Bucket list",
  "description": "The original design's model, tidesync's built-in default: spaces hold categories, which hold items. Equivalent to crates/protocol/src/entity.rs (a test checks it).",
  "collections": {
    "space": {
      "description": "An organisational container (\"Personal\", \"Work\"); the unit of sharing.",
      "plural": "spaces",
      "shareable": true,
      "properties": {
        "name": {
          "type": "string",
          "maxLength": 200,
          "x-cast": true
        },
        "description": {
          "type": "string",
          "maxLength": 5000,
          "x-cast": true
        },
        "color": {
          "type": "string",
          "maxLength": 32,
          "x-cast": true
        },
        "icon": {
          "type": "string",
          "maxLength": 64,
          "x-cast": true
        },
        "order": {
          "type": "number",
          "x-cast": true
        }
      },
      "required": [
        "name"
      ]
    },
    "category": {
      "description": "A group of items inside a space (\"Movies\", \"Books\").",
      "plural": "categories",
      "properties": {
        "spaceId": {
          "type": "string",
          "format": "uuid",
          "x-references": "space",
          "x-parent": true
        },
        "name": {
          "type": "string",
          "maxLength": 200,
          "x-cast": true
        },
        "description": {
          "type": "string",
          "maxLength": 5000,
          "x-cast": true
        },
        "color": {
          "type": "string",
          "maxLength": 32,
          "x-cast": true
        },
        "icon": {
          "type": "string",
          "maxLength": 64,
          "x-cast": true
        },
        "order": {
          "type": "number",
          "x-cast": true
        }
      },
      "required": [
        "spaceId",
        "name"
      ]
    },
    "item": {
      "description": "A bucket-list entry. Without spaceId and categoryId it stays in its author's personal scope.",
      "plural": "items",
      "properties": {
        "spaceId": {
          "type": "string",
          "format": "uuid",
          "x-references": "space",
          "x-parent": true
        },
        "categoryId": {
          "type": "string",
          "format": "uuid",
          "x-references": "category",
          "x-parent": true
        },
        "title": {
          "type": "string",
          "maxLength": 500,
          "x-cast": true
        },
        "description": {
          "type": "string",
          "maxLength": 5000,
          "x-cast": true
        },
        "notes": {
          "type": "string",
          "maxLength": 50000,
          "x-cast": true
        },
        "type": {
          "description": "Free text such as \"movie\"; a closed vocabulary in the original, so never cast.",
          "type": "string",
          "maxLength": 32
        },
        "movieId": {
          "description": "An external catalogue's id; the record never holds the catalogue's data.",
          "type": "string",
          "maxLength": 128,
          "x-cast": true
        },
        "bookId": {
          "type": "string",
          "maxLength": 128,
          "x-cast": true
        },
        "placeId": {
          "type": "string",
          "maxLength": 128,
          "x-cast": true
        },
        "isCompleted": {
          "type": "boolean",
          "x-cast": true
        },
        "completedAt": {
          "type": "string",
          "format": "date-time",
          "x-cast": true
        },
        "priority": {
          "description": "A number or a label such as \"high\".",
          "type": [
            "number",
            "string"
          ],
          "maxLength": 32
        },
        "order": {
          "type": "number",
          "x-cast": true
        },
        "tags": {
          "type": "array",
          "items": {
            "type": "string",
            "maxLength": 64,
            "x-cast": true
          },
          "maxItems": 100,
          "x-cast": true
        }
      },
      "required": [
        "title"
      ]
    }
  }
};
