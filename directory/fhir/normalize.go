package fhir

import (
	"strings"
	"unicode"
)

// NormalizeString is the one normalisation of string search values, used for index rows (Extract) and for
// query values (package search) alike, so both sides compare the same form: lower case, accents folded to
// their base letter (ä→a, ö→o, ü→u, é→e, ß→ss, æ→ae, ø→o, ł→l, …; combining marks dropped), runs of
// whitespace collapsed to one space, leading and trailing whitespace trimmed. Umlauts fold to the bare vowel
// rather than to "ae"/"oe"/"ue" because that is what a user typing without umlauts most often enters
// ("Muller" for Müller), and it matches HAPI/Elasticsearch ASCII folding the VZD uses.
func NormalizeString(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	space := false // a space is pending
	for _, r := range s {
		if unicode.IsSpace(r) {
			space = b.Len() > 0
			continue
		}
		if unicode.Is(unicode.Mn, r) { // combining marks of decomposed input
			continue
		}
		r = unicode.ToLower(r)
		if space {
			b.WriteByte(' ')
			space = false
		}
		if r < 0x80 {
			b.WriteRune(r)
			continue
		}
		if f, ok := fold[r]; ok {
			b.WriteString(f)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// fold maps lower-case Latin letters with diacritics to ASCII. Upper-case input is lowered first.
var fold = map[rune]string{
	'à': "a", 'á': "a", 'â': "a", 'ã': "a", 'ä': "a", 'å': "a", 'ā': "a", 'ă': "a", 'ą': "a",
	'æ': "ae", 'ç': "c", 'ć': "c", 'ĉ': "c", 'ċ': "c", 'č': "c", 'ď': "d", 'đ': "d", 'ð': "d",
	'è': "e", 'é': "e", 'ê': "e", 'ë': "e", 'ē': "e", 'ĕ': "e", 'ė': "e", 'ę': "e", 'ě': "e",
	'ĝ': "g", 'ğ': "g", 'ġ': "g", 'ģ': "g", 'ĥ': "h", 'ħ': "h",
	'ì': "i", 'í': "i", 'î': "i", 'ï': "i", 'ĩ': "i", 'ī': "i", 'ĭ': "i", 'į': "i", 'ı': "i",
	'ĳ': "ij", 'ĵ': "j", 'ķ': "k", 'ĺ': "l", 'ļ': "l", 'ľ': "l", 'ŀ': "l", 'ł': "l",
	'ñ': "n", 'ń': "n", 'ņ': "n", 'ň': "n", 'ŉ': "n",
	'ò': "o", 'ó': "o", 'ô': "o", 'õ': "o", 'ö': "o", 'ø': "o", 'ō': "o", 'ŏ': "o", 'ő': "o", 'œ': "oe",
	'ŕ': "r", 'ŗ': "r", 'ř': "r", 'ś': "s", 'ŝ': "s", 'ş': "s", 'š': "s", 'ș': "s", 'ß': "ss", 'ẞ': "ss",
	'ţ': "t", 'ť': "t", 'ŧ': "t", 'ț': "t", 'þ': "th",
	'ù': "u", 'ú': "u", 'û': "u", 'ü': "u", 'ũ': "u", 'ū': "u", 'ŭ': "u", 'ů': "u", 'ű': "u", 'ų': "u",
	'ŵ': "w", 'ý': "y", 'ÿ': "y", 'ŷ': "y", 'ź': "z", 'ż': "z", 'ž': "z",
}

// SplitWords splits text into _text words the way the VZD's simple mode does: the text is normalised
// (NormalizeString), "-", "," and "/" separate words like whitespace, and a trailing "." is dropped from
// each word ("Dr." → "dr", "Str." → "str"). Empty words are dropped; duplicates are kept. Package search
// uses it on the query so query words and index words agree.
func SplitWords(s string) []string {
	fields := strings.FieldsFunc(NormalizeString(s), func(r rune) bool {
		return r == ' ' || r == '-' || r == ',' || r == '/'
	})
	var out []string
	for _, w := range fields {
		w = strings.TrimRight(w, ".")
		if w != "" {
			out = append(out, w)
		}
	}
	return out
}
