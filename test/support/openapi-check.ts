import Ajv2020, { type ValidateFunction } from 'ajv/dist/2020';

const DOC_ID = 'https://p28.invalid/openapi.json';

/** Where an example or an answer sits in an OpenAPI document. */
export interface MediaSite {
  path: string;
  method: string;
  /** A response status, or `request` for the request body. */
  status: string;
}

type Doc = { components: unknown; paths: Record<string, Record<string, Operation>> };
type Media = { schema?: unknown; example?: unknown };
type Operation = {
  requestBody?: { content: Record<string, Media> };
  responses: Record<string, { content?: Record<string, Media> }>;
};

/**
 * Checks JSON values against the schemas of an OpenAPI 3.1 document with ajv's JSON Schema
 * 2020-12 validator (the dialect of OpenAPI 3.1), resolving `#/components/...` references.
 */
export class OpenApiSchemas {
  private readonly ajv = new Ajv2020({ strict: false, allErrors: true });
  private readonly compiled = new Map<string, ValidateFunction>();

  constructor(private readonly doc: Doc) {
    this.ajv.addSchema({ $id: DOC_ID, components: doc.components });
  }

  /** Every media entry of the document that carries an example, with its site. */
  examples(): Array<MediaSite & { example: unknown }> {
    const out: Array<MediaSite & { example: unknown }> = [];
    for (const [path, item] of Object.entries(this.doc.paths)) {
      for (const [method, op] of Object.entries(item)) {
        for (const media of Object.values(op.requestBody?.content ?? {})) {
          if (media.example !== undefined) out.push({ path, method, status: 'request', example: media.example });
        }
        for (const [status, response] of Object.entries(op.responses)) {
          const media = response.content?.['application/json'];
          if (media?.example !== undefined) out.push({ path, method, status, example: media.example });
        }
      }
    }
    return out;
  }

  /** The validation errors of `value` at `site` (empty when it matches); throws when the site has no JSON schema. */
  errors(site: MediaSite, value: unknown): string[] {
    const validate = this.validator(site);
    return validate(value) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? ''}`);
  }

  private validator(site: MediaSite): ValidateFunction {
    const key = `${site.method} ${site.path} ${site.status}`;
    const cached = this.compiled.get(key);
    if (cached) return cached;
    const op = this.doc.paths[site.path]?.[site.method];
    const media = site.status === 'request' ? op?.requestBody?.content['application/json'] : op?.responses[site.status]?.content?.['application/json'];
    if (!media?.schema) throw new Error(`no JSON schema for ${key}`);
    const schema = JSON.parse(JSON.stringify(media.schema).replaceAll('"#/components/', `"${DOC_ID}#/components/`)) as object;
    const validate = this.ajv.compile(schema);
    this.compiled.set(key, validate);
    return validate;
  }
}
