-- Multi-column statistics for the equality prefixes every lookup starts with. Without them the planner
-- multiplies the per-column frequencies as if independent: it took param = 'active' AND type =
-- 'Practitioner' AND code = 'true' (nearly every practitioner, 480k rows at full scale) for about 2k rows,
-- hashed that whole set and seq-scanned idx_reference instead of probing a few hundred _text candidates
-- (1 s instead of 10 ms). The MCV lists take effect with the next ANALYZE (autovacuum, or Store.Analyze
-- after a bulk load).
CREATE STATISTICS IF NOT EXISTS idx_token_param_type_code (mcv) ON param, type, code FROM idx_token;
CREATE STATISTICS IF NOT EXISTS idx_reference_type_param_ref_type (mcv) ON type, param, ref_type FROM idx_reference;
CREATE STATISTICS IF NOT EXISTS idx_string_param_type (mcv) ON param, type FROM idx_string;
