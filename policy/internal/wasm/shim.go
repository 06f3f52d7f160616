package wasm

// shim returns a hand-assembled WebAssembly module that owns the policy's memory and re-exports the host
// functions under the names the policy imports from "env". wazero's host modules can export functions but
// not a memory, and OPA's policies import both from the one module "env"; a module can, however, re-export
// functions it imports, so this shim imports them from "host" and exports them together with a memory it
// defines (minPages pages at first, growable).
func shim(minPages uint32) []byte {
	const i32 = 0x7f
	fns := []struct {
		name   string
		params int
		result bool
	}{
		{"opa_abort", 1, false}, {"opa_println", 1, false}, {"opa_builtin0", 2, true}, {"opa_builtin1", 3, true},
		{"opa_builtin2", 4, true}, {"opa_builtin3", 5, true}, {"opa_builtin4", 6, true},
	}
	types := leb128(uint32(len(fns)))
	imports := leb128(uint32(len(fns)))
	exports := leb128(uint32(len(fns) + 1))
	for i, f := range fns {
		types = append(types, 0x60) // func type
		types = append(types, leb128(uint32(f.params))...)
		for range f.params {
			types = append(types, i32)
		}
		if f.result {
			types = append(types, 1, i32)
		} else {
			types = append(types, 0)
		}
		imports = append(imports, wasmName("host")...)
		imports = append(imports, wasmName(f.name)...)
		imports = append(imports, 0x00) // import kind: function
		imports = append(imports, leb128(uint32(i))...)
		exports = append(exports, wasmName(f.name)...)
		exports = append(exports, 0x00) // export kind: function
		exports = append(exports, leb128(uint32(i))...)
	}
	exports = append(exports, wasmName("memory")...)
	exports = append(exports, 0x02, 0x00) // export kind: memory, index 0
	memories := append([]byte{1, 0x00}, leb128(minPages)...)

	out := []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}
	out = append(out, section(1, types)...)
	out = append(out, section(2, imports)...)
	out = append(out, section(5, memories)...)
	return append(out, section(7, exports)...)
}

func leb128(v uint32) []byte {
	var b []byte
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

func wasmName(s string) []byte { return append(leb128(uint32(len(s))), s...) }

func section(id byte, body []byte) []byte {
	return append(append([]byte{id}, leb128(uint32(len(body)))...), body...)
}
