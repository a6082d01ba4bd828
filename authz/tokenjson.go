package authz

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"

	"github.com/go-json-experiment/json/jsontext"
)

// A token's header and claims are read with jsontext, the streaming layer
// of the encoding/json/v2 design, rather than encoding/json: it is strict
// where encoding/json is lenient, and it reads the members in place, where
// decoding into a map of raw members cost a quarter of a new token's
// verification beside the signature (profile in BenchmarkVerifyNewToken).
// Strict here means a member name given twice is refused (RFC 7515 §4 and
// RFC 7519 §4 let a parser refuse it, and a token that says two things
// about one claim is not one to trust), as are invalid UTF-8 and anything
// after the object; names match exactly, never by case.

// jsonReader is a decoder over a byte slice, pooled: a new one per token
// would cost more than the header it reads.
type jsonReader struct {
	src bytes.Reader
	dec jsontext.Decoder
}

var jsonReaders = sync.Pool{New: func() any { return new(jsonReader) }}

// jsonMembers reads raw as one JSON object and calls member for each member
// whose name is in names, with that name and the decoder at its value,
// which member must read. Other members are skipped (still checked).
func jsonMembers(raw []byte, names []string, member func(name string, dec *jsontext.Decoder) error) error {
	r := jsonReaders.Get().(*jsonReader)
	defer func() {
		// The decoder is reset when next used: resetting it here too would
		// deepen the request goroutine's stack for nothing.
		r.src.Reset(nil)
		jsonReaders.Put(r)
	}()
	r.src.Reset(raw)
	r.dec.Reset(&r.src)
	dec := &r.dec
	if dec.PeekKind() != '{' {
		if _, err := dec.ReadToken(); err != nil {
			return err
		}
		return errors.New("not a JSON object")
	}
	if _, err := dec.ReadToken(); err != nil {
		return err
	}
	for dec.PeekKind() != '}' {
		name, err := dec.ReadValue()
		if err != nil {
			return err
		}
		i, err := memberIndex(names, name)
		if err != nil {
			return err
		}
		if i < 0 {
			if err := dec.SkipValue(); err != nil {
				return err
			}
			continue
		}
		if err := member(names[i], dec); err != nil {
			return fmt.Errorf("%s: %w", names[i], err)
		}
	}
	if _, err := dec.ReadToken(); err != nil {
		return err
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		return errors.New("data after the JSON object")
	}
	return nil
}

// memberIndex is the index in names of a member's quoted name, or -1.
func memberIndex(names []string, quoted jsontext.Value) (int, error) {
	name := quoted[1 : len(quoted)-1]
	if bytes.IndexByte(name, '\\') >= 0 {
		var err error
		if name, err = jsontext.AppendUnquote(nil, quoted); err != nil {
			return -1, err
		}
	}
	for i, n := range names {
		if string(name) == n {
			return i, nil
		}
	}
	return -1, nil
}

// readString reads a value that must be a string (not null).
func readString(dec *jsontext.Decoder) (string, error) {
	v, err := dec.ReadValue()
	if err != nil {
		return "", err
	}
	if k := v.Kind(); k != '"' {
		return "", fmt.Errorf("%s instead of a string", k)
	}
	s := v[1 : len(v)-1]
	if bytes.IndexByte(s, '\\') >= 0 {
		if s, err = jsontext.AppendUnquote(nil, v); err != nil {
			return "", err
		}
	}
	return string(s), nil
}

// readNumber reads a value that must be a number (not null).
func readNumber(dec *jsontext.Decoder) (float64, error) {
	v, err := dec.ReadValue()
	if err != nil {
		return 0, err
	}
	if k := v.Kind(); k != '0' {
		return 0, fmt.Errorf("%s instead of a number", k)
	}
	// A valid JSON number is a subset of what ParseFloat reads.
	return strconv.ParseFloat(string(v), 64)
}

// readStrings reads one string or an array of strings (RFC 7519 §4.1.3,
// the audience).
func readStrings(dec *jsontext.Decoder) ([]string, error) {
	switch k := dec.PeekKind(); k {
	case '"':
		s, err := readString(dec)
		return []string{s}, err
	case '[':
	default:
		if _, err := dec.ReadValue(); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%s instead of a string or an array of strings", k)
	}
	if _, err := dec.ReadToken(); err != nil {
		return nil, err
	}
	var list []string
	for dec.PeekKind() != ']' {
		s, err := readString(dec)
		if err != nil {
			return nil, err
		}
		list = append(list, s)
	}
	_, err := dec.ReadToken()
	return list, err
}
