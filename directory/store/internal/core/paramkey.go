package core

import (
	"crypto/md5"
	"encoding/binary"
)

// ParamKey is the PostgreSQL string index's key of the parameter param of resource type typ: the first
// four bytes of MD5("param|type"), big-endian, as a signed integer. The index leads with this one
// integer instead of the two text columns, which made building it after a bulk load twice as fast (the
// sort compared the leading text columns of every pair of rows it compared). MD5 because PostgreSQL
// computes the same key in SQL (ParamKeySQL) with built-in functions whose results do not change between
// versions; it is no security measure. Distinct known pairs have distinct keys (tested), so a search
// asks for the key alone.
func ParamKey(typ, param string) int32 {
	sum := md5.Sum([]byte(param + "|" + typ))
	return int32(binary.BigEndian.Uint32(sum[:4]))
}

// ParamKeySQL returns the PostgreSQL expression of ParamKey for the SQL expressions typ and param.
func ParamKeySQL(typ, param string) string {
	return "('x' || left(md5(" + param + " || '|' || " + typ + "), 8))::bit(32)::integer"
}
