package inventory

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseRoundTrip(t *testing.T) {
	want := shuffled()
	b, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(b)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want.Normalize()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Parse(Marshal(s)) = %+v\nwant %+v", got, want)
	}
	if got.Digest() != sample().Digest() {
		t.Error("parsed System digests unlike the original")
	}
}

func TestParseRefuses(t *testing.T) {
	valid, err := json.Marshal(sample())
	if err != nil {
		t.Fatal(err)
	}
	withField := func(field string) []byte { // valid with field added first
		return append([]byte("{"+field+","), valid[1:]...)
	}
	tests := []struct {
		name    string
		input   []byte
		want    error
		message string // a part of the error message
	}{
		{"unknown field", withField(`"Hostname2":"x"`), ErrSyntax, `unknown field "Hostname2"`},
		{"unknown nested field", []byte(`{"HostName":"h","ProcessorSummary":{"Sockets":2}}`), ErrSyntax, `unknown field "Sockets"`},
		{"unknown field in list", []byte(`{"HostName":"h","Packages":[{"Name":"a","Arch":"x"}]}`), ErrSyntax, `unknown field "Arch"`},
		{"field name in other case", []byte(`{"hostname":"h"}`), ErrSyntax, `unknown field "hostname"`},
		{"nested name in other case", []byte(`{"HostName":"h","NetworkInterfaces":[{"Name":"e","mtusize":1}]}`), ErrSyntax, `NetworkInterfaces[0]: unknown field "mtusize"`},
		{"duplicate field", withField(`"HostName":"evil"`), ErrSyntax, `duplicate field "HostName"`},
		{"duplicate map key", []byte(`{"HostName":"h","Facts":{"a":"1","a":"2"}}`), ErrSyntax, `Facts: duplicate field "a"`},
		{"trailing data", append(bytes.Clone(valid), "{}"...), ErrSyntax, "data after"},
		{"trailing garbage", append(bytes.Clone(valid), " x"...), ErrSyntax, "data after"},
		{"not an object", []byte(`["HostName"]`), ErrSyntax, "cannot unmarshal"},
		{"wrong type", []byte(`{"HostName":"h","ProcessorSummary":{"Count":"2"}}`), ErrSyntax, "cannot unmarshal"},
		{"negative number", []byte(`{"HostName":"h","Filesystems":[{"TotalBytes":-1}]}`), ErrOutOfRange, "Filesystems[0].TotalBytes: negative"},
		{"empty", nil, ErrSyntax, "EOF"},
		{"null", []byte(`null`), ErrMissing, "HostName: missing"},
		{"invalid UTF-8", []byte("{\"HostName\":\"h\xff\"}"), ErrInvalidUTF8, "at byte 14"},
		{"oversized", withField(`"AgentVersion":"` + strings.Repeat(" ", MaxSystemBytes) + `"`), ErrTooLarge, "limit 4194304"},
		{"long string", []byte(`{"HostName":"` + strings.Repeat("h", 1025) + `"}`), ErrTooLong, "HostName: longer than 1024 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse(tt.input)
			if !errors.Is(err, tt.want) || s != nil {
				t.Fatalf("Parse() = %v, %v; want nil, %v", s, err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.message) {
				t.Errorf("message %q does not contain %q", err, tt.message)
			}
		})
	}
}

func TestParseSizeLimit(t *testing.T) {
	pad := func(n int) []byte { // {"HostName":"h"} padded with spaces to n bytes
		obj := `{"HostName":"h"}`
		return []byte(obj + strings.Repeat(" ", n-len(obj)))
	}
	if _, err := Parse(pad(MaxSystemBytes)); err != nil {
		t.Errorf("Parse of exactly MaxSystemBytes: %v", err)
	}
	if _, err := Parse(pad(MaxSystemBytes + 1)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Parse of MaxSystemBytes+1: %v, want ErrTooLarge", err)
	}
}

func TestQuoteShort(t *testing.T) {
	long := strings.Repeat("é", 100) // 200 bytes
	got := quoteShort(long)
	if !strings.HasSuffix(got, `"...`) || len(got) > 70 || strings.ContainsRune(got, '\uFFFD') {
		t.Errorf("quoteShort(200 bytes) = %q", got)
	}
}

func FuzzParse(f *testing.F) {
	valid, err := json.Marshal(sample())
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{
		string(valid),
		`{"HostName":"h"}`,
		`{"HostName":"h","Facts":{"a":"1"},"Releases":{"x":"y"}}`,
		`{"HostName":"h","NetworkInterfaces":[{"Name":"e","IPv4Addresses":["1.2.3.4/8"],"MTUSize":1}]}`,
		`{"HostName":"h","hostname":"g"}`,
		`{"HostName":"h","Packages":[{"Name":"a","Version":"1","Manager":"dpkg"}]}`,
		`{"HostName":"h","CollectedAt":"2024-01-01T00:00:00Z"}`,
		`{"HostName":"h","ProcessorSummary":null,"Filesystems":[null]}`,
		`null`, `[]`, `{`, "\xff",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Parse(b)
		if err != nil {
			if s != nil {
				t.Fatalf("Parse returned a System with error %v", err)
			}
			return
		}
		// What Parse accepts is valid, normalised, and survives a round trip.
		if err := s.Validate(); err != nil {
			t.Fatalf("accepted System fails Validate: %v", err)
		}
		out, err := json.Marshal(s)
		if err != nil {
			t.Fatalf("accepted System does not encode: %v", err)
		}
		again, err := Parse(out)
		if err != nil {
			t.Fatalf("re-encoded System refused: %v\n%s", err, out)
		}
		if again.Digest() != s.Digest() {
			t.Fatalf("digest changed over a round trip:\n%s", out)
		}
	})
}
