import { z } from 'zod';

/**
 * The feature flag carried in every budget hash. `shadow` reports what would be blocked;
 * `enforce` blocks. The gate acts on the value in the hash, not on its own configuration.
 */
export const MODES = ['shadow', 'enforce'] as const;
export const Mode = z.enum(MODES);
export type Mode = z.infer<typeof Mode>;
