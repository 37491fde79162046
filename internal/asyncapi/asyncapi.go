// Package asyncapi checks protocol messages against the AsyncAPI document
// of the WebSocket protocol, docs/asyncapi.yaml, so that the document
// cannot drift from what the gateway and the clients send. Tests use it.
package asyncapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"
)

// Document is where the AsyncAPI document is, from the module's root.
const Document = "docs/asyncapi.yaml"

// Schemas are the document's schemas of every message a client sends and
// every message a gateway sends.
type Schemas struct {
	client, server *jsonschema.Schema
}

// Load reads the document from the module that holds the working
// directory (a test's: its package's directory) and compiles its schemas.
func Load() (*Schemas, error) {
	path, err := find(Document)
	if err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Compile(raw)
}

// Compile compiles the schemas of an AsyncAPI document in YAML.
func Compile(raw []byte) (*Schemas, error) {
	var doc any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", Document, err)
	}
	asJSON, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", Document, err)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(asJSON))
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	const url = "file:///asyncapi.json"
	if err := c.AddResource(url, v); err != nil {
		return nil, err
	}
	var s Schemas
	if s.client, err = c.Compile(url + "#/components/schemas/ClientRequest"); err != nil {
		return nil, err
	}
	if s.server, err = c.Compile(url + "#/components/schemas/ServerMessage"); err != nil {
		return nil, err
	}
	return &s, nil
}

// CheckClient checks a JSON request as a client sends it.
func (s *Schemas) CheckClient(data []byte) error { return check(s.client, data) }

// CheckServer checks a JSON reply or event as a gateway sends it.
func (s *Schemas) CheckServer(data []byte) error { return check(s.server, data) }

func check(sch *jsonschema.Schema, data []byte) error {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	if err := sch.Validate(v); err != nil {
		return fmt.Errorf("%s: %w", data, err)
	}
	return nil
}

// find looks for rel in the working directory and its parents, up to the
// module's root (the one with go.mod).
func find(rel string) (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, rel), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("asyncapi: no go.mod above the working directory")
		}
		dir = parent
	}
}
