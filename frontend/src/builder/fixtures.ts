/** Test data: part of `GET /api/node-types` as the server answers it (plus a secret_ref sink). */
import { toCatalogue, type NodeTypesResponse } from "./catalogue";

export const NODE_TYPES: NodeTypesResponse = {
  "node_types": [
    {
      "type": "input",
      "title": "Flow input",
      "description": "The values a run starts with; each field becomes an output port.",
      "category": "flow",
      "effect": "pure",
      "config_schema": {
        "type": "object",
        "additionalProperties": false,
        "properties": {
          "fields": {
            "type": "array",
            "items": {
              "type": "object",
              "additionalProperties": false,
              "required": [
                "name",
                "type"
              ],
              "properties": {
                "name": {
                  "type": "string",
                  "pattern": "^[A-Za-z_][A-Za-z0-9_]{0,63}$"
                },
                "type": {
                  "enum": [
                    "text",
                    "number",
                    "boolean",
                    "json",
                    "list",
                    "messages",
                    "file",
                    "any"
                  ]
                },
                "required": {
                  "type": "boolean",
                  "default": true
                },
                "default": {},
                "description": {
                  "type": "string"
                }
              }
            }
          }
        }
      },
      "inputs": [],
      "outputs": [],
      "dynamic_ports": true
    },
    {
      "type": "llm_chat",
      "title": "LLM chat",
      "description": "Asks a model (OpenAI, Anthropic, Gemini, DeepSeek, Groq or a self-hosted OpenAI-compatible server). Tokens stream out as they are written.",
      "category": "ai",
      "effect": "external",
      "config_schema": {
        "type": "object",
        "additionalProperties": false,
        "required": [
          "provider",
          "model"
        ],
        "properties": {
          "provider": {
            "enum": [
              "openai",
              "gemini",
              "deepseek",
              "groq",
              "openai_compatible",
              "fake",
              "anthropic"
            ]
          },
          "model": {
            "type": "string",
            "minLength": 1,
            "maxLength": 200
          },
          "system": {
            "type": "string",
            "maxLength": 100000
          },
          "temperature": {
            "type": "number",
            "minimum": 0,
            "maximum": 2
          },
          "max_tokens": {
            "type": "integer",
            "minimum": 1,
            "maximum": 200000,
            "default": 1024
          },
          "api_key_secret": {
            "type": "string",
            "pattern": "^(workspace:)?[A-Za-z][A-Za-z0-9_.-]{0,99}$",
            "description": "the vault secret holding the provider's API key: `name` for the flow owner's own, `workspace:name` for the workspace's shared one; the workers' key when empty"
          },
          "base_url": {
            "type": "string",
            "maxLength": 2048,
            "description": "openai_compatible only: the server's /v1 URL (vLLM, Ollama, ...)"
          }
        }
      },
      "inputs": [
        {
          "name": "prompt",
          "type": "text",
          "required": false,
          "description": "appended as a user turn"
        },
        {
          "name": "messages",
          "type": "messages",
          "required": false,
          "description": ""
        }
      ],
      "outputs": [
        {
          "name": "text",
          "type": "text",
          "required": true,
          "description": ""
        },
        {
          "name": "stream",
          "type": "stream",
          "required": true,
          "description": "the text as the model writes it: a stream input reads it at once"
        },
        {
          "name": "usage",
          "type": "json",
          "required": true,
          "description": "tokens and cost of the call"
        }
      ],
      "dynamic_ports": false
    },
    {
      "type": "output",
      "title": "Flow output",
      "description": "Publishes its value as one of the run's outputs, under `name`.",
      "category": "flow",
      "effect": "pure",
      "config_schema": {
        "type": "object",
        "additionalProperties": false,
        "required": [
          "name"
        ],
        "properties": {
          "name": {
            "type": "string",
            "pattern": "^[A-Za-z_][A-Za-z0-9_]{0,63}$"
          },
          "type": {
            "enum": [
              "text",
              "number",
              "boolean",
              "json",
              "list",
              "messages",
              "file",
              "any"
            ],
            "default": "any"
          }
        }
      },
      "inputs": [
        {
          "name": "value",
          "type": "any",
          "required": true,
          "description": ""
        }
      ],
      "outputs": [],
      "dynamic_ports": true
    },
    {
      "type": "template",
      "title": "Template",
      "description": "Renders text with Jinja2 in a sandbox; every variable it uses becomes an input port.",
      "category": "text",
      "effect": "pure",
      "config_schema": {
        "type": "object",
        "additionalProperties": false,
        "required": [
          "template"
        ],
        "properties": {
          "template": {
            "type": "string",
            "maxLength": 100000
          }
        }
      },
      "inputs": [],
      "outputs": [
        {
          "name": "text",
          "type": "text",
          "required": true,
          "description": ""
        }
      ],
      "dynamic_ports": true
    },
    {
      "type": "merge",
      "title": "Merge",
      "description": "Joins branches: `first` passes the first input that has a value (e.g. after an If), `all` waits for every branch and outputs the list of their values, in input order (null for a branch that produced none).",
      "category": "control",
      "effect": "pure",
      "config_schema": {
        "type": "object",
        "additionalProperties": false,
        "properties": {
          "mode": {
            "enum": [
              "first",
              "all"
            ],
            "default": "all"
          },
          "inputs": {
            "type": "integer",
            "minimum": 2,
            "maximum": 32,
            "default": 2
          }
        }
      },
      "inputs": [
        {
          "name": "in_1",
          "type": "any",
          "required": false,
          "description": ""
        },
        {
          "name": "in_2",
          "type": "any",
          "required": false,
          "description": ""
        }
      ],
      "outputs": [
        {
          "name": "result",
          "type": "any",
          "required": true,
          "description": ""
        }
      ],
      "dynamic_ports": true
    },
    {
      "type": "secret_sink",
      "title": "Secret sink",
      "description": "test only",
      "category": "test",
      "effect": "pure",
      "config_schema": {
        "type": "object"
      },
      "inputs": [
        {
          "name": "key",
          "type": "secret_ref",
          "required": true,
          "description": ""
        }
      ],
      "outputs": [],
      "dynamic_ports": false
    }
  ],
  "port_compatibility": {
    "text": [
      "any",
      "json",
      "text"
    ],
    "number": [
      "any",
      "json",
      "number",
      "text"
    ],
    "boolean": [
      "any",
      "boolean",
      "json",
      "text"
    ],
    "json": [
      "any",
      "json"
    ],
    "list": [
      "any",
      "json",
      "list"
    ],
    "messages": [
      "any",
      "json",
      "messages"
    ],
    "stream": [
      "any",
      "stream",
      "text"
    ],
    "file": [
      "any",
      "file"
    ],
    "secret_ref": [
      "secret_ref"
    ],
    "any": [
      "any",
      "boolean",
      "json",
      "list",
      "messages",
      "number",
      "text"
    ]
  },
  "models": [
    {
      "provider": "fake",
      "model": "fake-echo",
      "context": 32000,
      "input_per_million": 1.0,
      "output_per_million": 2.0,
      "cached_per_million": 0.5
    }
  ]
};

export const CATALOGUE = toCatalogue(NODE_TYPES);
