package proxytest

import (
	"net/url"
	"strconv"
)

func urlUnescape(s string) (string, error) { return url.PathUnescape(s) }

func itoa(n int) string { return strconv.Itoa(n) }
