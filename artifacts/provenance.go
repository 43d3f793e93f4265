// Build provenance: what drover keeps of an in-toto statement whose
// predicate is SLSA provenance (v1 or v0.2), such as the statements GitHub
// Actions and the SLSA generators produce.
//
// ParseProvenance reads a statement — or a DSSE envelope around one — and
// keeps the builder, build type, source repository and commit, build id and
// the SHA-256 digests of the statement's subjects. It does NOT verify the
// envelope's signatures: drover binds a statement to a release by writing
// the statement's SHA-256 (of the bytes as given, envelope included) into
// the release manifest, which the release signers sign, and by checking
// with [BuildProvenance.Check] that the statement is about the payload.
//
// The parser is strict, because the statement comes from outside: the input
// is bounded ([MaxProvenanceBytes]), must be valid UTF-8 and a single JSON
// value without duplicate object keys (which other parsers resolve
// differently: first or last wins), keys are matched exactly, and
// every string kept is at most 1024 bytes without control characters.
// Unknown fields are ignored.

package artifacts

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// MaxProvenanceBytes bounds an in-toto statement.
const MaxProvenanceBytes = 1 << 20

// ErrProvenance is wrapped by every error of ParseProvenance and (*BuildProvenance).Check.
var ErrProvenance = errors.New("invalid provenance")

// Limits of a statement, besides MaxProvenanceBytes.
const (
	maxProvenanceString   = 1024 // bytes in any string kept or read for a decision
	maxProvenanceSubjects = 64   // entries of "subject"
	maxProvenanceDepth    = 64   // nesting of JSON objects and arrays
)

// Accepted type URIs.
const (
	inTotoStatementV1     = "https://in-toto.io/Statement/v1"
	inTotoStatementV01    = "https://in-toto.io/Statement/v0.1"
	slsaProvenanceV1      = "https://slsa.dev/provenance/v1"
	slsaProvenanceV02     = "https://slsa.dev/provenance/v0.2"
	dssePayloadTypeInToto = "application/vnd.in-toto+json"
)

// BuildProvenance is what drover keeps of an in-toto statement with a SLSA provenance predicate.
type BuildProvenance struct {
	Builder    string   `json:"builder"`              // runDetails.builder.id (v1) or builder.id (v0.2)
	BuildType  string   `json:"build_type"`           // buildDefinition.buildType (v1) or buildType (v0.2)
	Repository string   `json:"repository,omitempty"` // source repository URI without the git+ prefix and without @ref, e.g. https://github.com/org/repo
	Commit     string   `json:"commit,omitempty"`     // source commit (hex, 40 or 64 chars)
	BuildID    string   `json:"build_id,omitempty"`   // runDetails.metadata.invocationId (v1) or metadata.buildInvocationId (v0.2)
	Subjects   []string `json:"subjects"`             // the sha256 digests (lower-case hex) the statement is about
	Statement  string   `json:"statement_sha256"`     // SHA-256 (hex) of the statement bytes as given
}

// ParseProvenance parses an in-toto Statement (_type https://in-toto.io/Statement/v1 or v0.1) whose
// predicateType is SLSA provenance v1 (https://slsa.dev/provenance/v1) or v0.2 (https://slsa.dev/provenance/v0.2).
//
// The statement may also come wrapped in a DSSE envelope
// ({"payloadType":"application/vnd.in-toto+json","payload":"<base64>","signatures":[...]}):
// its payload is unwrapped and parsed, and its signatures are NOT verified
// (the statement is bound to a release by its SHA-256 in the signed
// manifest instead). Statement is the SHA-256 of the bytes as given.
//
// The source (Repository and Commit) is taken, for v1, from
// externalParameters.source or externalParameters.workflow.repository when
// present (the commit then from the resolvedDependencies entry of that
// repository), otherwise from the first resolvedDependencies entry with a
// uri and a gitCommit or sha1 digest; for v0.2, from
// invocation.configSource or else materials[0].
func ParseProvenance(statement []byte) (*BuildProvenance, error) {
	if len(statement) > MaxProvenanceBytes {
		return nil, provErr("statement is %d bytes, more than the limit of %d", len(statement), MaxProvenanceBytes)
	}
	top, err := parseProvJSON("statement", statement)
	if err != nil {
		return nil, err
	}
	var p *BuildProvenance
	if _, ok := top.m["payloadType"]; ok {
		p, err = parseDSSE(top)
	} else {
		p, err = parseStatement(top)
	}
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(statement)
	p.Statement = hex.EncodeToString(sum[:])
	return p, nil
}

// Check reports whether the statement is about the payload with this SHA-256 (hex).
func (p *BuildProvenance) Check(payloadSHA256 string) error {
	if err := ValidateDigest(payloadSHA256); err != nil {
		return provErr("payload digest %q: %v", payloadSHA256, err)
	}
	if p == nil || len(p.Subjects) == 0 {
		return provErr("the statement names no sha256 subject, so it is not about this artifact (sha256:%s)", payloadSHA256)
	}
	for _, s := range p.Subjects {
		if s == payloadSHA256 {
			return nil
		}
	}
	about := "sha256:" + p.Subjects[0]
	if n := len(p.Subjects) - 1; n > 0 {
		about += fmt.Sprintf(" (and %d more)", n)
	}
	return provErr("the statement is about %s, not this artifact (sha256:%s)", about, payloadSHA256)
}

func provErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrProvenance, fmt.Sprintf(format, args...))
}

// parseDSSE unwraps an in-toto statement from a DSSE envelope.
func parseDSSE(env provObject) (*BuildProvenance, error) {
	pt, _, err := env.str("payloadType")
	if err != nil {
		return nil, err
	}
	if pt != dssePayloadTypeInToto {
		return nil, provErr("envelope payloadType %q: want %s", pt, dssePayloadTypeInToto)
	}
	enc, ok, err := env.strMax("payload", MaxProvenanceBytes)
	if err != nil {
		return nil, err
	}
	if !ok || enc == "" {
		return nil, provErr("envelope payload: missing, want the base64 of an in-toto statement")
	}
	payload, err := decodeDSSEBase64(enc)
	if err != nil {
		return nil, provErr("envelope payload: not base64: %v", err)
	}
	stmt, err := parseProvJSON("envelope payload", payload)
	if err != nil {
		return nil, err
	}
	return parseStatement(stmt)
}

// decodeDSSEBase64 decodes standard or URL-safe base64, padded or not:
// the DSSE specification allows either alphabet.
func decodeDSSEBase64(s string) ([]byte, error) {
	var err error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		var b []byte
		if b, err = enc.Strict().DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, err
}

// parseStatement reads an in-toto statement with a SLSA provenance predicate.
func parseStatement(st provObject) (*BuildProvenance, error) {
	typ, ok, err := st.str("_type")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, provErr("%s: missing, want %s or v0.1", st.field("_type"), inTotoStatementV1)
	}
	if typ != inTotoStatementV1 && typ != inTotoStatementV01 {
		return nil, provErr("%s %q: want %s or v0.1", st.field("_type"), typ, inTotoStatementV1)
	}
	pt, ok, err := st.str("predicateType")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, provErr("%s: missing, want %s or v0.2", st.field("predicateType"), slsaProvenanceV1)
	}
	if pt != slsaProvenanceV1 && pt != slsaProvenanceV02 {
		return nil, provErr("%s %q: want %s or v0.2", st.field("predicateType"), pt, slsaProvenanceV1)
	}
	subjects, err := parseSubjects(st)
	if err != nil {
		return nil, err
	}
	pred, ok, err := st.object("predicate")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, provErr("%s: missing, want a SLSA provenance object", st.field("predicate"))
	}
	p := &BuildProvenance{Subjects: subjects}
	if pt == slsaProvenanceV1 {
		err = parseSLSAv1(pred, p)
	} else {
		err = parseSLSAv02(pred, p)
	}
	if err != nil {
		return nil, err
	}
	return p, nil
}

// parseSubjects returns the distinct sha256 digests of the statement's
// subjects, in order. Subjects with only other digests are skipped.
func parseSubjects(st provObject) ([]string, error) {
	list, _, err := st.array("subject")
	if err != nil {
		return nil, err
	}
	if len(list) > maxProvenanceSubjects {
		return nil, provErr("%s: %d entries, more than the limit of %d", st.field("subject"), len(list), maxProvenanceSubjects)
	}
	var out []string
	for i, raw := range list {
		subj, ok, err := st.elem("subject", i, raw)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, provErr("%s[%d]: want an object, got null", st.field("subject"), i)
		}
		dig, ok, err := subj.object("digest")
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, provErr("%s: missing, want an object such as {\"sha256\": \"<hex>\"}", subj.field("digest"))
		}
		h, ok, err := dig.str("sha256")
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		h, err = hexDigest(dig.field("sha256"), h, 64)
		if err != nil {
			return nil, err
		}
		dup := false
		for _, o := range out {
			dup = dup || o == h
		}
		if !dup {
			out = append(out, h)
		}
	}
	if len(out) == 0 {
		return nil, provErr("%s: no sha256 digest, want at least one subject with digest.sha256", st.field("subject"))
	}
	return out, nil
}

// parseSLSAv1 reads a https://slsa.dev/provenance/v1 predicate.
func parseSLSAv1(pred provObject, p *BuildProvenance) error {
	def, _, err := pred.object("buildDefinition")
	if err != nil {
		return err
	}
	run, _, err := pred.object("runDetails")
	if err != nil {
		return err
	}
	builder, _, err := run.object("builder")
	if err != nil {
		return err
	}
	if p.Builder, err = builder.required("id", "the builder's URI"); err != nil {
		return err
	}
	if p.BuildType, _, err = def.str("buildType"); err != nil {
		return err
	}
	meta, _, err := run.object("metadata")
	if err != nil {
		return err
	}
	if p.BuildID, _, err = meta.str("invocationId"); err != nil {
		return err
	}

	// The repository the build says it built, when it says so.
	ext, _, err := def.object("externalParameters")
	if err != nil {
		return err
	}
	var named provSource
	switch raw := ext.m["source"]; jsonKind(raw) {
	case "string":
		if named.uri, _, err = ext.str("source"); err != nil {
			return err
		}
	case "object":
		srcObj, _, err := ext.object("source")
		if err != nil {
			return err
		}
		if named, err = readSource(srcObj, "gitCommit", "sha1"); err != nil {
			return err
		}
	case "", "null":
	default:
		return provErr("%s: want a URI string or an object with uri and digest, got %s", ext.field("source"), jsonKind(raw))
	}
	if named.uri == "" {
		wf, _, err := ext.object("workflow")
		if err != nil {
			return err
		}
		if named.uri, _, err = wf.str("repository"); err != nil {
			return err
		}
	}

	deps, _, err := def.array("resolvedDependencies")
	if err != nil {
		return err
	}
	src := named
	for i, raw := range deps {
		if src.commit != "" {
			break
		}
		dep, ok, err := def.elem("resolvedDependencies", i, raw)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		d, err := readSource(dep, "gitCommit", "sha1")
		if err != nil {
			return err
		}
		if d.uri == "" || d.commit == "" {
			continue
		}
		if named.uri == "" {
			src = d
		} else if sameRepository(named.uri, d.uri) {
			src.commit = d.commit
		}
	}
	src.into(p)
	return nil
}

// parseSLSAv02 reads a https://slsa.dev/provenance/v0.2 predicate.
func parseSLSAv02(pred provObject, p *BuildProvenance) error {
	builder, _, err := pred.object("builder")
	if err != nil {
		return err
	}
	if p.Builder, err = builder.required("id", "the builder's URI"); err != nil {
		return err
	}
	if p.BuildType, _, err = pred.str("buildType"); err != nil {
		return err
	}
	meta, _, err := pred.object("metadata")
	if err != nil {
		return err
	}
	if p.BuildID, _, err = meta.str("buildInvocationId"); err != nil {
		return err
	}
	inv, _, err := pred.object("invocation")
	if err != nil {
		return err
	}
	cs, _, err := inv.object("configSource")
	if err != nil {
		return err
	}
	src, err := readSource(cs, "sha1")
	if err != nil {
		return err
	}
	if src.uri == "" {
		materials, _, err := pred.array("materials")
		if err != nil {
			return err
		}
		if len(materials) > 0 {
			m, _, err := pred.elem("materials", 0, materials[0])
			if err != nil {
				return err
			}
			if src, err = readSource(m, "sha1"); err != nil {
				return err
			}
		}
	}
	src.into(p)
	return nil
}

// provSource is a source repository and commit as a statement gives them.
type provSource struct{ uri, commit string }

// readSource reads {uri, digest: {<alg>: <commit>}} with the first of algs
// present; either may be empty.
func readSource(o provObject, algs ...string) (provSource, error) {
	var s provSource
	var err error
	if s.uri, _, err = o.str("uri"); err != nil {
		return s, err
	}
	dig, _, err := o.object("digest")
	if err != nil {
		return s, err
	}
	for _, alg := range algs {
		v, ok, err := dig.str(alg)
		if err != nil {
			return s, err
		}
		if !ok {
			continue
		}
		if alg == "sha1" {
			s.commit, err = hexDigest(dig.field(alg), v, 40)
		} else {
			s.commit, err = hexDigest(dig.field(alg), v, 40, 64)
		}
		return s, err
	}
	return s, nil
}

// into sets p's Repository and Commit.
func (s provSource) into(p *BuildProvenance) {
	p.Repository, p.Commit = repositoryURI(s.uri), s.commit
}

// repositoryURI strips a "git+" prefix and an "@refs/…" suffix.
func repositoryURI(uri string) string {
	uri = strings.TrimPrefix(uri, "git+")
	if i := strings.LastIndex(uri, "@refs/"); i >= 0 {
		uri = uri[:i]
	}
	return uri
}

// sameRepository reports whether two source URIs name the same repository.
func sameRepository(a, b string) bool {
	norm := func(s string) string { return strings.TrimSuffix(strings.TrimSuffix(repositoryURI(s), "/"), ".git") }
	return strings.EqualFold(norm(a), norm(b))
}

// hexDigest checks that v is hex of one of the given lengths and returns
// it in lower case.
func hexDigest(field, v string, lengths ...int) (string, error) {
	want := fmt.Sprintf("%d hex characters", lengths[0])
	if len(lengths) == 2 {
		want = fmt.Sprintf("%d or %d hex characters", lengths[0], lengths[1])
	}
	okLen := false
	for _, n := range lengths {
		okLen = okLen || len(v) == n
	}
	if _, err := hex.DecodeString(v); err != nil || !okLen {
		return "", provErr("%s %q: want %s", field, v, want)
	}
	return strings.ToLower(v), nil
}

// provObject is a JSON object of a statement, its keys matched exactly,
// with the path that names it in errors ("predicate.runDetails").
type provObject struct {
	path string
	m    map[string]json.RawMessage
}

// parseProvJSON checks that b is valid UTF-8 and a single JSON object
// without duplicate keys, and decodes its top level.
func parseProvJSON(what string, b []byte) (provObject, error) {
	if !utf8.Valid(b) {
		return provObject{}, provErr("%s is not valid UTF-8", what)
	}
	if err := checkProvJSON(b); err != nil {
		return provObject{}, provErr("%s is not valid JSON: %v", what, err)
	}
	if k := jsonKind(b); k != "object" {
		return provObject{}, provErr("%s: want a JSON object, got %s", what, k)
	}
	o := provObject{}
	if err := json.Unmarshal(b, &o.m); err != nil {
		return provObject{}, provErr("%s is not valid JSON: %v", what, err)
	}
	return o, nil
}

// checkProvJSON walks the tokens of b: one JSON value, nested at most
// maxProvenanceDepth deep, no object with the same key twice.
func checkProvJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber() // numbers are not read, only checked: 1e999 is valid JSON
	type frame struct {
		keys    map[string]bool // nil for an array
		wantKey bool
	}
	var stack []frame
	values := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			if values == 0 {
				return errors.New("empty")
			}
			return nil
		}
		if err != nil {
			return err
		}
		if len(stack) == 0 {
			if values++; values > 1 {
				return errors.New("more than one value")
			}
		}
		if d, ok := tok.(json.Delim); ok && (d == '{' || d == '[') {
			if len(stack) == maxProvenanceDepth {
				return fmt.Errorf("nested more than %d deep", maxProvenanceDepth)
			}
			f := frame{}
			if d == '{' {
				f = frame{keys: map[string]bool{}, wantKey: true}
			}
			stack = append(stack, f)
			continue
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
		} else if top := len(stack) - 1; top >= 0 && stack[top].keys != nil && stack[top].wantKey {
			key, _ := tok.(string)
			if stack[top].keys[key] {
				return fmt.Errorf("key %q appears twice in one object", key)
			}
			stack[top].keys[key] = true
			stack[top].wantKey = false
			continue
		}
		// A value ended: in an object, a key comes next.
		if top := len(stack) - 1; top >= 0 && stack[top].keys != nil {
			stack[top].wantKey = true
		}
	}
}

// jsonKind names the kind of a JSON value: object, array, string, number,
// true, false or null; "" when absent.
func jsonKind(raw []byte) string {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 {
		return ""
	}
	switch raw[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't':
		return "true"
	case 'f':
		return "false"
	case 'n':
		return "null"
	}
	return "number"
}

// field names the member key of o in errors.
func (o provObject) field(key string) string {
	if o.path == "" {
		return key
	}
	return o.path + "." + key
}

// str returns the string member key, at most maxProvenanceString bytes
// without control characters; ok is false when it is absent or null.
func (o provObject) str(key string) (s string, ok bool, err error) {
	return o.strMax(key, maxProvenanceString)
}

// strMax is str with a limit of limit bytes.
func (o provObject) strMax(key string, limit int) (s string, ok bool, err error) {
	raw := o.m[key]
	switch k := jsonKind(raw); k {
	case "", "null":
		return "", false, nil
	case "string":
	default:
		return "", false, provErr("%s: want a string, got %s", o.field(key), k)
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false, provErr("%s: %v", o.field(key), err)
	}
	if len(s) > limit {
		return "", false, provErr("%s: %d bytes, more than the limit of %d", o.field(key), len(s), limit)
	}
	for _, r := range s {
		if r < 0x20 || (0x7f <= r && r < 0xa0) {
			return "", false, provErr("%s %q: contains a control character", o.field(key), s)
		}
	}
	return s, true, nil
}

// required returns the string member key, which must be present and non-empty.
func (o provObject) required(key, want string) (string, error) {
	s, _, err := o.str(key)
	if err != nil {
		return "", err
	}
	if s == "" {
		return "", provErr("%s: missing, want %s", o.field(key), want)
	}
	return s, nil
}

// object returns the object member key; ok is false when it is absent or
// null, and the empty object returned then reads as all absent.
func (o provObject) object(key string) (provObject, bool, error) {
	return o.decodeObject(o.field(key), o.m[key])
}

// elem returns element i of the array member key as an object.
func (o provObject) elem(key string, i int, raw json.RawMessage) (provObject, bool, error) {
	return o.decodeObject(fmt.Sprintf("%s[%d]", o.field(key), i), raw)
}

func (o provObject) decodeObject(path string, raw json.RawMessage) (provObject, bool, error) {
	c := provObject{path: path}
	switch k := jsonKind(raw); k {
	case "", "null":
		return c, false, nil
	case "object":
	default:
		return c, false, provErr("%s: want an object, got %s", path, k)
	}
	if err := json.Unmarshal(raw, &c.m); err != nil {
		return c, false, provErr("%s: %v", path, err)
	}
	return c, true, nil
}

// array returns the array member key; ok is false when it is absent or null.
func (o provObject) array(key string) ([]json.RawMessage, bool, error) {
	raw := o.m[key]
	switch k := jsonKind(raw); k {
	case "", "null":
		return nil, false, nil
	case "array":
	default:
		return nil, false, provErr("%s: want an array, got %s", o.field(key), k)
	}
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, false, provErr("%s: %v", o.field(key), err)
	}
	return list, true, nil
}
