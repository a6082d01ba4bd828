package envoy

import (
	"encoding/json"
	"fmt"
	"os"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"

	// Every typed extension envoy.yaml references, so its Any fields resolve.
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/http/early_header_mutation/header_mutation/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
)

// LoadBootstrap decodes an Envoy YAML bootstrap strictly (unknown fields and
// wrong types are errors) and validates it, typed extensions included.
func LoadBootstrap(path string) (*bootstrapv3.Bootstrap, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseBootstrap(raw)
}

// ParseBootstrap is LoadBootstrap on bytes.
func ParseBootstrap(raw []byte) (*bootstrapv3.Bootstrap, error) {
	var doc any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("envoy config is not YAML: %w", err)
	}
	js, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("envoy config: %w", err)
	}
	var bs bootstrapv3.Bootstrap
	if err := (protojson.UnmarshalOptions{}).Unmarshal(js, &bs); err != nil {
		return nil, fmt.Errorf("envoy config does not match the v3 API: %w", err)
	}
	if err := bs.ValidateAll(); err != nil {
		return nil, fmt.Errorf("envoy config is invalid: %w", err)
	}
	if err := validateTypedConfigs(bs.ProtoReflect()); err != nil {
		return nil, err
	}
	return &bs, nil
}

type allValidator interface{ ValidateAll() error }

// validateTypedConfigs unpacks every Any (typed_config and friends) and runs
// its own validation, which ValidateAll on the bootstrap does not reach.
func validateTypedConfigs(m protoreflect.Message) error {
	var err error
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsMap():
			if fd.MapValue().Kind() == protoreflect.MessageKind {
				v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
					err = validateMessage(mv.Message())
					return err == nil
				})
			}
		case fd.IsList():
			if fd.Kind() == protoreflect.MessageKind {
				for i := 0; i < v.List().Len() && err == nil; i++ {
					err = validateMessage(v.List().Get(i).Message())
				}
			}
		case fd.Kind() == protoreflect.MessageKind:
			err = validateMessage(v.Message())
		}
		return err == nil
	})
	return err
}

func validateMessage(m protoreflect.Message) error {
	if a, ok := m.Interface().(*anypb.Any); ok {
		inner, err := a.UnmarshalNew()
		if err != nil {
			return fmt.Errorf("typed config %s: %w", a.GetTypeUrl(), err)
		}
		if v, ok := inner.(allValidator); ok {
			if err := v.ValidateAll(); err != nil {
				return fmt.Errorf("typed config %s: %w", a.GetTypeUrl(), err)
			}
		}
		return validateTypedConfigs(inner.ProtoReflect())
	}
	return validateTypedConfigs(m)
}
