-- Chain rows (core.ChainRows): a PractitionerRole carries the names of its Practitioner and a
-- HealthcareService those of its Organization, plus a practitioner.active / organization.active marker,
-- all only while that target is active. The store keeps them on every write; this fills them for data
-- written before, in one set-based pass (about 3 M rows at full scale). Sorted like idx_string_value, so
-- that index grows at its end instead of by random page splits.
DELETE FROM idx_string WHERE type = 'PractitionerRole' AND param >= 'practitioner.' AND param < 'practitioner/';
DELETE FROM idx_token WHERE type = 'PractitionerRole' AND param >= 'practitioner.' AND param < 'practitioner/';
DELETE FROM idx_string WHERE type = 'HealthcareService' AND param >= 'organization.' AND param < 'organization/';
DELETE FROM idx_token WHERE type = 'HealthcareService' AND param >= 'organization.' AND param < 'organization/';

INSERT INTO idx_token (type, id, param, system, code, display)
SELECT DISTINCT r.type, r.id, 'practitioner.active', '', 'true', ''
FROM idx_reference r
WHERE r.type = 'PractitionerRole' AND r.param = 'practitioner' AND r.ref_type = 'Practitioner'
  AND EXISTS (SELECT 1 FROM idx_token a WHERE a.type = r.ref_type AND a.id = r.ref_id AND a.param = 'active' AND a.code = 'true')
ORDER BY r.id;

INSERT INTO idx_string (type, id, param, value)
SELECT DISTINCT r.type, r.id, 'practitioner.' || s.param, s.value
FROM idx_reference r
JOIN idx_string s ON s.type = r.ref_type AND s.id = r.ref_id AND s.param IN ('family', 'given', 'name')
WHERE r.type = 'PractitionerRole' AND r.param = 'practitioner' AND r.ref_type = 'Practitioner'
  AND EXISTS (SELECT 1 FROM idx_token a WHERE a.type = r.ref_type AND a.id = r.ref_id AND a.param = 'active' AND a.code = 'true')
ORDER BY 3, 4, 2;

INSERT INTO idx_token (type, id, param, system, code, display)
SELECT DISTINCT r.type, r.id, 'organization.active', '', 'true', ''
FROM idx_reference r
WHERE r.type = 'HealthcareService' AND r.param = 'organization' AND r.ref_type = 'Organization'
  AND EXISTS (SELECT 1 FROM idx_token a WHERE a.type = r.ref_type AND a.id = r.ref_id AND a.param = 'active' AND a.code = 'true')
ORDER BY r.id;

INSERT INTO idx_string (type, id, param, value)
SELECT DISTINCT r.type, r.id, 'organization.' || s.param, s.value
FROM idx_reference r
JOIN idx_string s ON s.type = r.ref_type AND s.id = r.ref_id AND s.param IN ('alias', 'name')
WHERE r.type = 'HealthcareService' AND r.param = 'organization' AND r.ref_type = 'Organization'
  AND EXISTS (SELECT 1 FROM idx_token a WHERE a.type = r.ref_type AND a.id = r.ref_id AND a.param = 'active' AND a.code = 'true')
ORDER BY 3, 4, 2;

-- The planner's statistics (MCV lists of param, type) should know the new parameters before the first
-- search; ANALYZE of two tables is a sample, seconds at full scale. Not on an empty store: statistics
-- that say "empty" made the first import's joins read whole tables per batch.
DO $$
BEGIN
	IF EXISTS (SELECT 1 FROM resources) THEN
		ANALYZE idx_token, idx_string;
	END IF;
END
$$;
