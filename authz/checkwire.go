package authz

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"go.opentelemetry.io/otel/propagation"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
)

// A CheckRequest is mostly what the decision never reads: Envoy sends every
// header of the request, the peers' addresses, metadata. Decoded into
// generated messages, all of it became garbage on every request, a quarter
// of what authz allocated per Check and so of the collector's work. Check's
// handler therefore reads the wire bytes itself, for the few fields the
// decision reads (wireCheck), and skips the rest unread. It decodes them as
// protobuf does — the last of a repeated scalar wins, a message given twice
// is merged, a field of an unexpected wire type is unknown and skipped, map
// keys repeat with the last value winning, strings must be valid UTF-8 —
// and FuzzWireCheckRequest holds it to the generated decoder's result. It is
// laxer in one way only: the parts it does not read (the peers, metadata,
// TLS) are not checked for well-formedness beyond their length, as an
// unknown field would not be.
//
// With tracing on, it also keeps the values of the headers the propagator
// reads (traceContext), found as checkCarrier finds them in a decoded
// message.

// Field numbers on the way to the HTTP request's attributes, from
// envoy/service/auth/v3 and envoy/config/core/v3.
const (
	fieldCheckAttributes = 1 // CheckRequest.attributes
	fieldContextRequest  = 4 // AttributeContext.request
	fieldRequestHTTP     = 2 // AttributeContext.Request.http

	// AttributeContext.HttpRequest
	fieldHTTPID        = 1
	fieldHTTPMethod    = 2
	fieldHTTPHeaders   = 3 // map<string, string>
	fieldHTTPPath      = 4
	fieldHTTPHost      = 5
	fieldHTTPScheme    = 6
	fieldHTTPQuery     = 7
	fieldHTTPFragment  = 8
	fieldHTTPProtocol  = 10
	fieldHTTPBody      = 11
	fieldHTTPHeaderMap = 13

	fieldHeaderMapHeaders = 1 // HeaderMap.headers
	// HeaderValue
	fieldHeaderKey      = 1
	fieldHeaderValue    = 2
	fieldHeaderRawValue = 3
	// a map entry
	fieldMapKey   = 1
	fieldMapValue = 2
)

var errWireFormat = errors.New("malformed protobuf")

// wireCheck is a CheckRequest as the Check handler reads it: the Request
// for the decision and, with tracing on, the trace headers.
type wireCheck struct {
	request Request
	// hasHTTP is false when the request carried no HTTP attributes.
	hasHTTP bool
	// trace, when it names header fields (set before decoding), is given
	// their values.
	trace traceContext
}

func (w *wireCheck) traceCarrier() propagation.TextMapCarrier { return &w.trace }

func (w *wireCheck) read(r *Request) (Reason, error) {
	if !w.hasHTTP {
		return ReasonInvalidPath, errNoHTTPAttributes
	}
	*r = w.request
	return "", nil
}

// traceContext is the trace headers of a request read from its wire
// bytes, for the propagator: the fields it reads (its Fields, lower-cased)
// and what the request said of them. It is a TextMapCarrier that knows of
// no other header.
type traceContext struct {
	fields []string
	values []traceValue // by field
}

// traceValue is what a request said of one trace field: in the headers
// map (the last of a repeated name) and in header_map (the first).
type traceValue struct {
	mapped, listed       string
	hasMapped, hasListed bool
}

var _ propagation.TextMapCarrier = (*traceContext)(nil)

// Get is checkCarrier's Get: the headers map first, then header_map.
func (t *traceContext) Get(key string) string {
	key = strings.ToLower(key)
	i := slices.Index(t.fields, key)
	switch {
	case i < 0:
		return ""
	case t.values[i].hasMapped:
		return t.values[i].mapped
	}
	return t.values[i].listed
}

// Keys returns the trace fields the request carried.
func (t *traceContext) Keys() []string {
	var keys []string
	for i, f := range t.fields {
		if t.values[i].hasMapped || t.values[i].hasListed {
			keys = append(keys, f)
		}
	}
	return keys
}

// Set is never used: authz reads trace context, it does not send it.
func (*traceContext) Set(string, string) {}

// prepare sizes t for the fields.
func (t *traceContext) prepare(fields []string) {
	t.fields, t.values = fields, make([]traceValue, len(fields))
}

// foldedIndex is the index in names (lower-case) of strings.ToLower(name),
// or -1: how requestFromCheck and checkCarrier match a header_map name. An
// ASCII name is compared folded, allocating nothing: of equal length, a
// name can only fold onto an ASCII one if it is ASCII itself. Any other
// goes through strings.ToLower, which folds some non-ASCII letters onto
// ASCII ones (K, İ).
func foldedIndex(name []byte, names []string) int {
	if !isASCII(name) {
		return slices.Index(names, strings.ToLower(string(name)))
	}
	for i, n := range names {
		if len(name) == len(n) && strings.EqualFold(string(name), n) {
			return i
		}
	}
	return -1
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// wireDecoder holds what the fields read so far say, until the message
// ends and the Request can be put together the way requestFromCheck puts
// it together from a decoded message. Strings are views of the wire bytes
// until then.
type wireDecoder struct {
	hasHTTP      bool
	method, path []byte
	// From header_map, in order: what requestFromCheck reads of it.
	listedMethod, listedPath    []byte
	listedRequestID             []byte
	hasListedRequestID          bool
	authorizationN, onBehalfOfN int
	authorization, onBehalfOf   []byte
	headersAuthorization        []byte
	headersOnBehalfOf           []byte
	headersRequestID            []byte
	headersMethod, headersPath  []byte
	hasHeadersAuthorization     bool
	hasHeadersOnBehalfOf        bool
	// underscoredListed and underscored are the names holding an
	// underscore, from header_map and the headers map.
	underscoredListed, underscored [][]byte
	trace                          *traceContext
}

// decodeCheckRequest reads a CheckRequest's wire bytes into w.
func decodeCheckRequest(b []byte, w *wireCheck) error {
	d := wireDecoder{trace: &w.trace}
	if err := readMessage(b, d.checkRequest); err != nil {
		return err
	}
	d.finish(w)
	return nil
}

// readMessage calls field for each field of the message in b. A field it
// does not take (it returns -1) is skipped.
func readMessage(b []byte, field func(num protowire.Number, typ protowire.Type, b []byte) (int, error)) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return errWireFormat
		}
		b = b[n:]
		n, err := field(num, typ, b)
		if err != nil {
			return err
		}
		if n < 0 {
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				return errWireFormat
			}
		}
		b = b[n:]
	}
	return nil
}

// readEmbedded reads the length-delimited value at b and hands it to
// inner.
func readEmbedded(b []byte, inner func([]byte) error) (int, error) {
	v, n := protowire.ConsumeBytes(b)
	if n < 0 {
		return 0, errWireFormat
	}
	return n, inner(v)
}

// str reads a string field's value, which must be valid UTF-8 (proto3).
func str(b []byte) ([]byte, int, error) {
	v, n := protowire.ConsumeBytes(b)
	if n < 0 {
		return nil, 0, errWireFormat
	}
	if !utf8.Valid(v) {
		return nil, 0, errors.New("string field holds invalid UTF-8")
	}
	return v, n, nil
}

func (d *wireDecoder) checkRequest(num protowire.Number, typ protowire.Type, b []byte) (int, error) {
	if num != fieldCheckAttributes || typ != protowire.BytesType {
		return -1, nil
	}
	return readEmbedded(b, func(v []byte) error { return readMessage(v, d.attributes) })
}

func (d *wireDecoder) attributes(num protowire.Number, typ protowire.Type, b []byte) (int, error) {
	if num != fieldContextRequest || typ != protowire.BytesType {
		return -1, nil
	}
	return readEmbedded(b, func(v []byte) error { return readMessage(v, d.request) })
}

func (d *wireDecoder) request(num protowire.Number, typ protowire.Type, b []byte) (int, error) {
	if num != fieldRequestHTTP || typ != protowire.BytesType {
		return -1, nil
	}
	d.hasHTTP = true
	return readEmbedded(b, func(v []byte) error { return readMessage(v, d.http) })
}

func (d *wireDecoder) http(num protowire.Number, typ protowire.Type, b []byte) (int, error) {
	if typ != protowire.BytesType {
		return -1, nil
	}
	switch num {
	case fieldHTTPMethod:
		v, n, err := str(b)
		d.method = v
		return n, err
	case fieldHTTPPath:
		v, n, err := str(b)
		d.path = v
		return n, err
	case fieldHTTPID, fieldHTTPHost, fieldHTTPScheme, fieldHTTPQuery, fieldHTTPFragment, fieldHTTPProtocol, fieldHTTPBody:
		_, n, err := str(b)
		return n, err
	case fieldHTTPHeaders:
		return readEmbedded(b, d.headersEntry)
	case fieldHTTPHeaderMap:
		return readEmbedded(b, func(v []byte) error { return readMessage(v, d.headerMap) })
	}
	return -1, nil
}

// keyValue reads a map entry or a HeaderValue, which share field numbers:
// key and value, strings, and — a HeaderValue's only — raw_value, bytes. In
// a map entry a field 3 is unknown, and skipping it is reading it as bytes.
func keyValue(b []byte) (key, value, raw []byte, err error) {
	err = readMessage(b, func(num protowire.Number, typ protowire.Type, b []byte) (n int, err error) {
		if typ != protowire.BytesType {
			return -1, nil
		}
		switch num {
		case fieldHeaderKey:
			key, n, err = str(b)
		case fieldHeaderValue:
			value, n, err = str(b)
		case fieldHeaderRawValue:
			if raw, n = protowire.ConsumeBytes(b); n < 0 {
				err = errWireFormat
			}
		default:
			return -1, nil
		}
		return n, err
	})
	return key, value, raw, err
}

// headersEntry reads one entry of the headers map. A name given again
// replaces the earlier entry, as in a decoded map.
func (d *wireDecoder) headersEntry(b []byte) error {
	name, value, _, err := keyValue(b)
	if err != nil {
		return err
	}
	if bytes.IndexByte(name, '_') >= 0 {
		d.underscored = append(d.underscored, name)
	}
	if len(d.trace.fields) > 0 {
		if i := slices.Index(d.trace.fields, string(name)); i >= 0 {
			d.trace.values[i].mapped, d.trace.values[i].hasMapped = string(value), true
		}
	}
	switch string(name) {
	case "authorization":
		d.headersAuthorization, d.hasHeadersAuthorization = value, true
	case OnBehalfOfHeader:
		d.headersOnBehalfOf, d.hasHeadersOnBehalfOf = value, true
	case "x-request-id":
		d.headersRequestID = value
	case ":method":
		d.headersMethod = value
	case ":path":
		d.headersPath = value
	}
	return nil
}

func (d *wireDecoder) headerMap(num protowire.Number, typ protowire.Type, b []byte) (int, error) {
	if num != fieldHeaderMapHeaders || typ != protowire.BytesType {
		return -1, nil
	}
	return readEmbedded(b, d.headerValue)
}

// headerValue reads one header_map entry, in order, as requestFromCheck
// does.
func (d *wireDecoder) headerValue(b []byte) error {
	key, value, raw, err := keyValue(b)
	if err != nil {
		return err
	}
	// headerValue's rule: value, unless it is empty and raw_value is not.
	if len(value) == 0 && len(raw) > 0 {
		value = raw
	}
	if bytes.IndexByte(key, '_') >= 0 {
		d.underscoredListed = append(d.underscoredListed, key)
	}
	if len(d.trace.fields) > 0 {
		if i := foldedIndex(key, d.trace.fields); i >= 0 && !d.trace.values[i].hasListed {
			d.trace.values[i].listed, d.trace.values[i].hasListed = string(value), true
		}
	}
	i := foldedIndex(key, readHeaderNames)
	if i < 0 {
		return nil
	}
	switch readHeaderNames[i] {
	case "authorization":
		if d.authorizationN == 0 {
			d.authorization = value
		}
		d.authorizationN++
	case OnBehalfOfHeader:
		if d.onBehalfOfN == 0 {
			d.onBehalfOf = value
		}
		d.onBehalfOfN++
	case "x-request-id":
		d.listedRequestID, d.hasListedRequestID = value, true
	case ":method":
		if len(d.listedMethod) == 0 {
			d.listedMethod = value
		}
	case ":path":
		if len(d.listedPath) == 0 {
			d.listedPath = value
		}
	}
	return nil
}

// readHeaderNames are the headers the decision reads.
var readHeaderNames = []string{"authorization", OnBehalfOfHeader, "x-request-id", ":method", ":path"}

// finish puts the Request together from the fields read, in
// requestFromCheck's order, copying the strings out of the wire bytes.
func (d *wireDecoder) finish(w *wireCheck) {
	w.hasHTTP = d.hasHTTP
	if !d.hasHTTP {
		return
	}
	r := &w.request
	r.Method, r.Path = string(d.method), string(d.path)
	if d.authorizationN > 0 {
		r.Authorization = HeaderValues{First: string(d.authorization), Count: d.authorizationN}
	}
	if d.onBehalfOfN > 0 {
		r.OnBehalfOf = HeaderValues{First: string(d.onBehalfOf), Count: d.onBehalfOfN}
	}
	if d.hasListedRequestID {
		r.RequestID = string(d.listedRequestID)
	}
	if r.Method == "" {
		r.Method = string(d.listedMethod)
	}
	if r.Path == "" {
		r.Path = string(d.listedPath)
	}
	for _, name := range d.underscoredListed {
		noteUnderscored(r, string(name))
	}
	for _, name := range d.underscored {
		noteUnderscored(r, string(name))
	}
	if d.hasHeadersAuthorization && r.Authorization.Count == 0 {
		r.Authorization.Add(string(d.headersAuthorization))
	}
	if d.hasHeadersOnBehalfOf && r.OnBehalfOf.Count == 0 {
		r.OnBehalfOf.Add(string(d.headersOnBehalfOf))
	}
	if r.RequestID == "" {
		r.RequestID = string(d.headersRequestID)
	}
	if r.Method == "" {
		r.Method = string(d.headersMethod)
	}
	if r.Path == "" {
		r.Path = string(d.headersPath)
	}
}

// checkCodec is the gRPC codec of authz's server: protobuf, except that a
// wireCheck is read by decodeCheckRequest.
type checkCodec struct{ proto encoding.CodecV2 }

func newCheckCodec() checkCodec { return checkCodec{proto: encoding.GetCodecV2(proto.Name)} }

func (c checkCodec) Name() string { return proto.Name }

func (c checkCodec) Marshal(v any) (mem.BufferSlice, error) {
	if r, ok := v.(*encodedResponse); ok {
		return mem.BufferSlice{r.buf}, nil // gRPC frees it once written
	}
	return c.proto.Marshal(v)
}

func (c checkCodec) Unmarshal(data mem.BufferSlice, v any) (err error) {
	w, ok := v.(*wireCheck)
	if !ok {
		return c.proto.Unmarshal(data, v)
	}
	// A fault in the decoder fails this request, never the process.
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("decoding CheckRequest: %v", p)
		}
	}()
	if len(data) == 1 {
		return decodeCheckRequest(data[0].ReadOnlyData(), w)
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	return decodeCheckRequest(buf.ReadOnlyData(), w)
}

// checkServiceDesc is envoy.service.auth.v3.Authorization with a Check
// handler that decodes into a wireCheck (the generated handler decodes
// into a whole CheckRequest).
var checkServiceDesc = grpc.ServiceDesc{
	ServiceName: authv3.Authorization_ServiceDesc.ServiceName,
	HandlerType: (*authv3.AuthorizationServer)(nil),
	Methods:     []grpc.MethodDesc{{MethodName: "Check", Handler: checkHandler}},
	Metadata:    authv3.Authorization_ServiceDesc.Metadata,
}

func checkHandler(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
	s := srv.(*Service)
	if interceptor != nil {
		w := new(wireCheck)
		if err := s.readCheck(w, dec); err != nil {
			return nil, err
		}
		return interceptor(ctx, w, &grpc.UnaryServerInfo{Server: srv, FullMethod: authv3.Authorization_Check_FullMethodName},
			func(ctx context.Context, req any) (any, error) { return s.checkWire(ctx, req.(*wireCheck)), nil })
	}
	// Without an interceptor nothing but this call sees w: it is reused.
	w := wireChecks.Get().(*wireCheck)
	defer func() {
		*w = wireCheck{}
		wireChecks.Put(w)
	}()
	if err := s.readCheck(w, dec); err != nil {
		return nil, err
	}
	return s.checkWire(ctx, w), nil
}

var wireChecks = sync.Pool{New: func() any { return new(wireCheck) }}

// readCheck decodes a request into w, with the trace headers when tracing.
func (s *Service) readCheck(w *wireCheck, dec func(any) error) error {
	if s.cfg.Tracer != nil {
		w.trace.prepare(s.traceFields)
	}
	return dec(w)
}

// checkWire decides a request read from the wire and encodes the answer.
func (s *Service) checkWire(ctx context.Context, w *wireCheck) *encodedResponse {
	return check(s, ctx, w, func(s *Service, dec Decision) *encodedResponse { return s.encodeResponse(&dec) })
}

// The answer is encoded the same way, straight from the Decision into a
// buffer of gRPC's pool (encodeResponse), instead of building a
// CheckResponse of a dozen messages to be marshalled and dropped. It is the
// message response builds, field for field: TestEncodedResponseMatches
// decodes one for every kind of decision and compares.

// Field numbers of a CheckResponse and the messages in it, from
// envoy/service/auth/v3, envoy/config/core/v3, envoy/type/v3,
// google/rpc/status.proto and google/protobuf/struct.proto.
const (
	fieldResponseStatus   = 1 // CheckResponse.status
	fieldResponseDenied   = 2 // CheckResponse.denied_response
	fieldResponseOK       = 3 // CheckResponse.ok_response
	fieldResponseMetadata = 4 // CheckResponse.dynamic_metadata

	fieldStatusCode    = 1 // google.rpc.Status.code
	fieldStatusMessage = 2 // google.rpc.Status.message

	fieldOKHeaders         = 2 // OkHttpResponse.headers
	fieldOKHeadersToRemove = 5 // OkHttpResponse.headers_to_remove

	fieldDeniedStatus  = 1 // DeniedHttpResponse.status
	fieldDeniedHeaders = 2 // DeniedHttpResponse.headers
	fieldDeniedBody    = 3 // DeniedHttpResponse.body
	fieldHTTPStatus    = 1 // envoy.type.v3.HttpStatus.code

	fieldOptionHeader = 1 // HeaderValueOption.header
	fieldOptionAppend = 2 // HeaderValueOption.append
	fieldOptionAction = 3 // HeaderValueOption.append_action

	fieldStructFields = 1 // Struct.fields
	fieldValueString  = 3 // Value.string_value
)

// encodedResponse is a CheckResponse in wire bytes.
type encodedResponse struct{ buf mem.Buffer }

// encodeResponse encodes the response the decision calls for.
func (s *Service) encodeResponse(dec *Decision) *encodedResponse {
	var metaBuf [5]Header
	meta := metadataFields(dec, metaBuf[:0])
	metaSize := 0
	for _, f := range meta {
		metaSize += sizeMessage(fieldStructFields, metadataEntrySize(f))
	}
	var headerBuf [4]Header
	var set []Header
	var remove []string
	var d *Denial
	var size, innerSize, statusSize int
	if dec.Allowed() {
		set, remove = s.decider.UpstreamHeaders(dec, headerBuf[:0])
		for _, h := range set {
			innerSize += sizeMessage(fieldOKHeaders, optionSize(h))
		}
		for _, name := range remove {
			innerSize += protowire.SizeTag(fieldOKHeadersToRemove) + protowire.SizeBytes(len(name))
		}
		size = sizeMessage(fieldResponseStatus, 0) + sizeMessage(fieldResponseOK, innerSize)
	} else {
		if d = dec.Denial; d == nil { // unreachable by construction; never let it become an allow
			d = s.decider.denials.get(ReasonUnavailable)
		}
		set = denialHeaders(d, headerBuf[:0])
		statusSize = sizeVarintField(fieldStatusCode, uint64(int64(d.GRPCCode))) + sizeString(fieldStatusMessage, string(d.Reason))
		innerSize = sizeMessage(fieldDeniedStatus, sizeVarintField(fieldHTTPStatus, uint64(d.Status))) + sizeString(fieldDeniedBody, string(d.Body))
		for _, h := range set {
			innerSize += sizeMessage(fieldDeniedHeaders, optionSize(h))
		}
		size = sizeMessage(fieldResponseStatus, statusSize) + sizeMessage(fieldResponseDenied, innerSize)
	}
	size += sizeMessage(fieldResponseMetadata, metaSize)

	pool := mem.DefaultBufferPool()
	buf := pool.Get(size)
	b := (*buf)[:0]
	if d == nil {
		b = appendMessageHeader(b, fieldResponseStatus, 0)
		b = appendMessageHeader(b, fieldResponseOK, innerSize)
		for _, h := range set {
			b = appendOption(b, fieldOKHeaders, h)
		}
		for _, name := range remove {
			b = protowire.AppendString(protowire.AppendTag(b, fieldOKHeadersToRemove, protowire.BytesType), name)
		}
	} else {
		b = appendMessageHeader(b, fieldResponseStatus, statusSize)
		b = appendVarintField(b, fieldStatusCode, uint64(int64(d.GRPCCode)))
		b = appendString(b, fieldStatusMessage, string(d.Reason))
		b = appendMessageHeader(b, fieldResponseDenied, innerSize)
		b = appendMessageHeader(b, fieldDeniedStatus, sizeVarintField(fieldHTTPStatus, uint64(d.Status)))
		b = appendVarintField(b, fieldHTTPStatus, uint64(d.Status))
		for _, h := range set {
			b = appendOption(b, fieldDeniedHeaders, h)
		}
		b = appendString(b, fieldDeniedBody, string(d.Body))
	}
	b = appendMessageHeader(b, fieldResponseMetadata, metaSize)
	for _, f := range meta {
		b = appendMessageHeader(b, fieldStructFields, metadataEntrySize(f))
		b = appendString(b, fieldMapKey, f.Name)
		b = appendMessageHeader(b, fieldMapValue, stringValueSize(f.Value))
		b = protowire.AppendString(protowire.AppendTag(b, fieldValueString, protowire.BytesType), f.Value)
	}
	if len(b) != size {
		panic(fmt.Sprintf("encoded CheckResponse is %d bytes, sized as %d", len(b), size))
	}
	*buf = b
	return &encodedResponse{buf: mem.NewBuffer(buf, pool)}
}

// optionSize is the size of a HeaderValueOption that sets h, overwriting,
// never appending, as headerOptions builds it.
func optionSize(h Header) int {
	return sizeMessage(fieldOptionHeader, headerSize(h)) + sizeMessage(fieldOptionAppend, 0) +
		sizeVarintField(fieldOptionAction, uint64(corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD))
}

func appendOption(b []byte, num protowire.Number, h Header) []byte {
	b = appendMessageHeader(b, num, optionSize(h))
	b = appendMessageHeader(b, fieldOptionHeader, headerSize(h))
	b = appendString(b, fieldHeaderKey, h.Name)
	b = appendString(b, fieldHeaderValue, h.Value)
	// append: a BoolValue of false, which is an empty message.
	b = appendMessageHeader(b, fieldOptionAppend, 0)
	return appendVarintField(b, fieldOptionAction, uint64(corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD))
}

func headerSize(h Header) int {
	return sizeString(fieldHeaderKey, h.Name) + sizeString(fieldHeaderValue, h.Value)
}

// metadataEntrySize is the size of an entry of Struct.fields whose value
// is a string. The value is a oneof, present even when empty.
func metadataEntrySize(f Header) int {
	return sizeString(fieldMapKey, f.Name) + sizeMessage(fieldMapValue, stringValueSize(f.Value))
}

func stringValueSize(v string) int {
	return protowire.SizeTag(fieldValueString) + protowire.SizeBytes(len(v))
}

// sizeString and appendString are a proto3 string field: absent when empty.
func sizeString(num protowire.Number, v string) int {
	if v == "" {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeBytes(len(v))
}

func appendString(b []byte, num protowire.Number, v string) []byte {
	if v == "" {
		return b
	}
	return protowire.AppendString(protowire.AppendTag(b, num, protowire.BytesType), v)
}

// sizeVarintField and appendVarintField are a proto3 integer or enum
// field: absent when zero.
func sizeVarintField(num protowire.Number, v uint64) int {
	if v == 0 {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeVarint(v)
}

func appendVarintField(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	return protowire.AppendVarint(protowire.AppendTag(b, num, protowire.VarintType), v)
}

// sizeMessage is the size of an embedded message field of n bytes.
func sizeMessage(num protowire.Number, n int) int {
	return protowire.SizeTag(num) + protowire.SizeBytes(n)
}

// appendMessageHeader appends the tag and length of an embedded message
// field of n bytes; its fields follow.
func appendMessageHeader(b []byte, num protowire.Number, n int) []byte {
	return protowire.AppendVarint(protowire.AppendTag(b, num, protowire.BytesType), uint64(n))
}
