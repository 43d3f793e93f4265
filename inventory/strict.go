package inventory

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// checkNames refuses, in a JSON document that has already decoded into a
// System, object keys that are not the System's JSON names spelled exactly
// (encoding/json matches them case-insensitively) and keys given twice
// (encoding/json keeps the last): two readers of the same document must
// not see two different inventories.
func checkNames(b []byte) error {
	c := nameChecker{
		dec:    json.NewDecoder(bytes.NewReader(b)),
		fields: make(map[reflect.Type]map[string]reflect.Type),
	}
	return c.value(reflect.TypeFor[System](), "")
}

// nameChecker walks the token stream of a document along the Go type it
// decodes into.
type nameChecker struct {
	dec    *json.Decoder
	fields map[reflect.Type]map[string]reflect.Type // JSON names of each struct type met
}

// value checks the next value in the stream, which decodes into type t
// (nil when it is not known). path names the value in errors.
func (c *nameChecker) value(t reflect.Type, path string) error {
	tok, err := c.dec.Token()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSyntax, err)
	}
	switch tok {
	case json.Delim('['):
		var elem reflect.Type
		if t != nil && t.Kind() == reflect.Slice {
			elem = t.Elem()
		}
		for i := 0; c.dec.More(); i++ {
			if err := c.value(elem, path+"["+strconv.Itoa(i)+"]"); err != nil {
				return err
			}
		}
	case json.Delim('{'):
		if err := c.object(t, path); err != nil {
			return err
		}
	default:
		return nil // a scalar
	}
	if _, err := c.dec.Token(); err != nil { // the closing ] or }
		return fmt.Errorf("%w: %w", ErrSyntax, err)
	}
	return nil
}

// object checks the members of an object, its opening brace read.
func (c *nameChecker) object(t reflect.Type, path string) error {
	fields := c.structFields(t)
	isMap := t != nil && t.Kind() == reflect.Map
	seen := make(map[string]bool)
	for c.dec.More() {
		tok, err := c.dec.Token()
		if err != nil {
			return fmt.Errorf("%w: %w", ErrSyntax, err)
		}
		key, _ := tok.(string) // the decoder only returns strings as keys
		if seen[key] {
			return fmt.Errorf("%w: %sduplicate field %s", ErrSyntax, prefix(path), quoteShort(key))
		}
		seen[key] = true
		var sub reflect.Type
		var subPath string
		switch {
		case isMap:
			sub, subPath = t.Elem(), path+"["+quoteShort(key)+"]"
		case fields != nil:
			ft, ok := fields[key]
			if !ok {
				return fmt.Errorf("%w: %sunknown field %s", ErrSyntax, prefix(path), quoteShort(key))
			}
			sub, subPath = ft, join(path, key)
		}
		if err := c.value(sub, subPath); err != nil {
			return err
		}
	}
	return nil
}

// structFields maps the JSON names of struct type t to their types; it
// returns nil if t is not a struct decoded from a JSON object.
func (c *nameChecker) structFields(t reflect.Type) map[string]reflect.Type {
	if t == nil || t.Kind() != reflect.Struct || t == reflect.TypeFor[time.Time]() {
		return nil
	}
	if f, ok := c.fields[t]; ok {
		return f
	}
	fields := make(map[string]reflect.Type, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case !f.IsExported() || name == "-":
			continue
		case name == "":
			name = f.Name
		}
		fields[name] = f.Type
	}
	c.fields[t] = fields
	return fields
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func prefix(path string) string {
	if path == "" {
		return ""
	}
	return path + ": "
}
