import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RedisClient } from '../../lib/redis/client';
import { RedisKeys } from '../../lib/redis/keys';
import { RESERVATIONS_FIELD } from '../../lib/redis/reservations';
import type { GateDecision } from '../../types/permit';

/**
 * The conformance vectors (`vectors.json`, next to this file): budget hash fields, a request, the
 * time and the live reservations, with the decision every gate must give. The mocha suite runs
 * them through the Node gate and POST /v1/decisions; the Python package's pytest suite runs the
 * same file through the Python gate.
 */
export interface Vector {
  name: string;
  /** The budget hash's fields; null: no key; "wrong_type": a key holding a string. */
  hash: Record<string, string> | null | 'wrong_type';
  request: unknown;
  /** The gate's clock, epoch ms. */
  now: number;
  /** Live (ttlMs > 0) or lapsed reservations of other plans, written before the decision. */
  reservations?: Array<{ planId: string; amountUsd: number; ttlMs: number }>;
  /** Gate options besides the defaults: forceShadow, disabled, reservationTtlMs. */
  options?: { forceShadow?: boolean; disabled?: boolean; reservationTtlMs?: number };
  /** A Redis that cannot answer: unreachable, frozen (SIGSTOP), or a breaker opened by failures. */
  fault?: 'unreachable' | 'frozen' | 'breaker_open';
  /** The decision (contract fields and `source`); `detail` is not compared for faults. */
  expect: GateDecision;
  /** planIds holding a live reservation after the decision, sorted. */
  reservedAfter?: string[];
}

export const VECTORS_FILE = join(__dirname, 'vectors.json');

export function loadVectors(): Vector[] {
  return JSON.parse(readFileSync(VECTORS_FILE, 'utf8')) as Vector[];
}

const keys = new RedisKeys();

/** Writes a vector's hash and reservations (expiry on the Redis clock) into an empty database. */
export async function seedVector(client: RedisClient, vector: Vector, symbol = 'ETHUSDT'): Promise<void> {
  const key = keys.budget(symbol);
  if (vector.hash === 'wrong_type') {
    await client.set(key, 'not a hash');
    return;
  }
  if (vector.hash === null) return;
  await client.hset(key, vector.hash);
  if (vector.reservations?.length) {
    const [sec, usec] = await client.time();
    const nowMs = Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
    const stored = Object.fromEntries(vector.reservations.map((r) => [r.planId, [String(r.amountUsd), nowMs + r.ttlMs]]));
    await client.hset(key, RESERVATIONS_FIELD, JSON.stringify(stored));
  }
}

/** The planIds holding a live reservation on the symbol's hash, sorted. */
export async function reservedPlans(client: RedisClient, symbol = 'ETHUSDT'): Promise<string[]> {
  const key = keys.budget(symbol);
  if ((await client.type(key)) !== 'hash') return [];
  const stored = await client.hget(key, RESERVATIONS_FIELD);
  if (stored === null) return [];
  const [sec] = await client.time();
  const entries = Object.entries(JSON.parse(stored) as Record<string, [string, number]>);
  return entries.filter(([, [, expires]]) => expires > Number(sec) * 1000).map(([planId]) => planId).sort();
}

/** The fields of a decision the vectors compare: the contract's, and `source`; no `detail` for faults. */
export function comparable(decision: GateDecision, vector: Vector): Record<string, unknown> {
  const { detail, ...rest } = decision;
  return vector.fault || detail === undefined ? rest : { ...rest, detail };
}
