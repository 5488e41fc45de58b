import { z } from 'zod';
import { DEFAULT_BREAKER } from './circuit-breaker.js';

const positiveInt = z.number().int().positive();

/** A JSON value, as a provider's constructor arguments and the evaluation context hold. */
const jsonValue: z.ZodType<JsonValue> = z.lazy(() =>
  z.union([z.string(), z.number(), z.boolean(), z.null(), z.array(jsonValue), z.record(z.string(), jsonValue)]),
);
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** A JavaScript identifier: an export or a static method name, never a path into the module. */
const identifier = z.string().regex(/^[A-Za-z_$][A-Za-z0-9_$]*$/, { message: 'must be a JavaScript identifier (an export or method name)' });

/**
 * `flags.openfeature`: any OpenFeature server provider, evaluated through @openfeature/server-sdk
 * (README "The OpenFeature checker"). The provider package is loaded as code: `package` names
 * what the operator installed, and nothing else is imported.
 */
export const openFeatureSchema = z
  .object({
    /**
     * The provider's npm package (resolved like ff-detector's own imports: install it beside
     * ff-detector), or a path to a module of your own (./…, ../…, /…; relative to the working
     * directory).
     */
    package: z.string().min(1),
    /** The export holding the provider class; null: the default export, else the one export named *Provider. */
    export: identifier.nullable().default(null),
    /** A static method of that export that builds the provider (ConfigCat: `create`); null: `new`. */
    factory: identifier.nullable().default(null),
    /**
     * The arguments of the constructor (or factory), JSON values: usually one options object.
     * `${NAME}` in a string is replaced by the environment variable NAME (SDK keys stay out of files).
     */
    args: z.array(jsonValue).default([]),
    /** The flag key to evaluate; null: the top-level `flag`. */
    flagKey: z.string().min(1).nullable().default(null),
    /** Attributes added to every evaluation context; `targetingKey` is always the user ID. */
    context: z
      .record(z.string(), jsonValue)
      .default({})
      .refine((context) => !('targetingKey' in context), { message: 'must not set targetingKey: it is always the user ID' }),
    /** Evaluations in flight at once, across every batch. */
    concurrency: positiveInt.max(1024).default(16),
    /** One evaluation that has not answered by then is unevaluable (and a breaker failure). */
    timeoutMs: positiveInt.default(2000),
    /** How long start-up waits for the provider to be ready; still not ready, its users are unevaluable. */
    readyTimeoutMs: positiveInt.default(30_000),
    /** Consecutive failed evaluations (timeout, provider error, not ready) that open the breaker; 0: never. */
    breakerThreshold: z.number().int().min(0).max(1000).default(DEFAULT_BREAKER.threshold),
    /** An open breaker makes checks unevaluable at once for this long, then lets one probe through. */
    breakerCooldownMs: positiveInt.default(DEFAULT_BREAKER.cooldownMs),
  })
  .strict();

export type OpenFeatureSettings = z.infer<typeof openFeatureSchema>;
