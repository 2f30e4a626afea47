// Table tests of the renderer's helm behaviours: the chart checks trust
// them, so each helm function and value rule the chart relies on is pinned
// here against what helm 3 produces.
package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func renderOne(t *testing.T, tpl string, values map[string]interface{}) (string, error) {
	t.Helper()
	templates := map[string]string{
		"c/templates/_helpers.tpl": `{{- define "c.name" -}}n-{{ .Values.x }}{{- end }}` +
			`{{- define "c.loop" -}}{{ include "c.loop" . }}{{- end }}`,
		"c/templates/t.yaml": tpl,
	}
	top := map[string]interface{}{
		"Values":  values,
		"Chart":   &chartMetadata{Name: "c", Version: "1.0.0", AppVersion: "2.0"},
		"Release": map[string]interface{}{"Name": "r", "Namespace": "ns", "Service": "Helm"},
		"Capabilities": &capabilities{
			KubeVersion: kubeVersion{Version: "v1.29.0", Major: "1", Minor: "29"},
			APIVersions: versionSet{"v1", "keda.sh/v1alpha1"},
		},
		"Files": chartFiles{"files/a.txt": []byte("one\ntwo\n")},
	}
	out, err := render(templates, top)
	if err != nil {
		return "", err
	}
	if len(out) != 1 {
		t.Fatalf("expected one non-partial output, got %d", len(out))
	}
	return out[0].Content, nil
}

func TestFunctions(t *testing.T) {
	vals := map[string]interface{}{
		"x":    "v",
		"n":    float64(9464),
		"m":    map[string]interface{}{"b": float64(1), "a": []interface{}{"ALL"}},
		"tmpl": "{{ .Values.x }}-{{ .Release.Name }}",
		"dots": map[string]interface{}{"http.listen": "0.0.0.0:9464"},
	}
	cases := []struct{ name, tpl, want string }{
		{"include", `{{ include "c.name" . }}`, "n-v"},
		{"tpl", `{{ tpl .Values.tmpl . }}`, "v-r"},
		{"toYaml sorts keys, lists unindented", `{{ toYaml .Values.m }}`, "a:\n- ALL\nb: 1"},
		{"numbers print whole", `{{ .Values.n }}`, "9464"},
		{"fromYaml gives float64", `{{ (fromYaml "a: 1").a | kindOf }}`, "float64"},
		{"fromYaml error", `{{ (fromYaml ": :").Error | empty | not }}`, "true"},
		{"toJson", `{{ toJson .Values.m }}`, `{"a":["ALL"],"b":1}`},
		{"lookup finds nothing", `{{ lookup "v1" "Secret" "ns" "s" | len }}`, "0"},
		{"missing key is empty", `[{{ .Values.nope }}]`, "[]"},
		{"index on dotted keys", `{{ index .Values.dots "http.listen" }}`, "0.0.0.0:9464"},
		{"Files.Get", `{{ .Files.Get "files/a.txt" | trim }}`, "one\ntwo"},
		{"Files.Lines", `{{ .Files.Lines "files/a.txt" | len }}`, "2"},
		{"APIVersions.Has", `{{ .Capabilities.APIVersions.Has "keda.sh/v1alpha1" }}` +
			`{{ .Capabilities.APIVersions.Has "x/v1" }}`, "truefalse"},
		{"KubeVersion", `{{ .Capabilities.KubeVersion.Minor }}`, "29"},
		{"Chart", `{{ .Chart.Name }}-{{ .Chart.AppVersion }}`, "c-2.0"},
		{"Template", `{{ .Template.Name }} {{ .Template.BasePath }}`, "c/templates/t.yaml c/templates"},
		{"sha256sum", `{{ "a" | sha256sum }}`, "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"},
	}
	for _, c := range cases {
		got, err := renderOne(t, c.tpl, vals)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
}

func TestErrors(t *testing.T) {
	cases := []struct{ name, tpl, want string }{
		{"required nil", `{{ required "need x" .Values.nope }}`, "need x"},
		{"required empty", `{{ required "need y" "" }}`, "need y"},
		{"fail", `{{ fail "stop here" }}`, "stop here"},
		{"env is removed", `{{ env "HOME" }}`, `function "env" not defined`},
		{"include recursion", `{{ include "c.loop" . }}`, "nested reference"},
	}
	for _, c := range cases {
		_, err := renderOne(t, c.tpl, map[string]interface{}{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got error %v, want one containing %q", c.name, err, c.want)
		}
	}
}

func TestCoalesce(t *testing.T) {
	dst := map[string]interface{}{
		"a": map[string]interface{}{"b": 1.0, "c": 2.0},
		"d": []interface{}{1.0},
		"e": "keep",
	}
	src := map[string]interface{}{
		"a": map[string]interface{}{"b": nil, "x": "new"},
		"d": []interface{}{2.0, 3.0},
	}
	got := coalesce(src, dst)
	want := map[string]interface{}{
		"a": map[string]interface{}{"c": 2.0, "x": "new"},
		"d": []interface{}{2.0, 3.0},
		"e": "keep",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("coalesce: got %v, want %v", got, want)
	}
	if _, ok := dst["a"].(map[string]interface{})["x"]; ok {
		t.Errorf("coalesce modified its destination")
	}
}

func TestParseSet(t *testing.T) {
	cases := []struct {
		in   string
		want map[string]interface{}
	}{
		{`a.b=1`, map[string]interface{}{"a": map[string]interface{}{"b": int64(1)}}},
		{`config.http\.listen=0.0.0.0:1`, map[string]interface{}{
			"config": map[string]interface{}{"http.listen": "0.0.0.0:1"}}},
		{`x=true`, map[string]interface{}{"x": true}},
		{`x=null`, map[string]interface{}{"x": nil}},
		{`x=007`, map[string]interface{}{"x": "007"}},
	}
	for _, c := range cases {
		got, err := parseSet(c.in)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("parseSet(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
	if _, err := parseSet("novalue"); err == nil {
		t.Errorf("parseSet accepted a set without =")
	}
}

func TestSplitManifests(t *testing.T) {
	r := renderedFile{Name: "c/templates/t.yaml", Content: "\n---\n# only a comment\n---\napiVersion: v1\nkind: ConfigMap\n" +
		"metadata:\n  name: a\n---\n\n"}
	ms, err := splitManifests(r)
	if err != nil || len(ms) != 1 || ms[0].Kind != "ConfigMap" || ms[0].Name != "a" {
		t.Fatalf("splitManifests: %v, %+v", err, ms)
	}
	if _, err := splitManifests(renderedFile{Name: "bad", Content: "a: [\n"}); err == nil ||
		!strings.Contains(err.Error(), "YAML parse error") {
		t.Errorf("a broken document was not reported: %v", err)
	}
	if _, err := splitManifests(renderedFile{Name: "nokind", Content: "a: 1\n"}); err == nil {
		t.Errorf("a document without kind was accepted")
	}
}

func TestKubeVersionConstraint(t *testing.T) {
	meta := &chartMetadata{KubeVersion: ">=1.23.0-0"}
	if _, err := checkKubeVersion(meta, "1.29.0"); err != nil {
		t.Errorf("1.29 rejected: %v", err)
	}
	if _, err := checkKubeVersion(meta, "1.21.3"); err == nil {
		t.Errorf("1.21 accepted")
	}
}

func TestSchemaValidation(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "values.schema.json")
	schema := `{"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
	  "additionalProperties": false, "properties": {"port": {"type": "integer", "maximum": 65535}}}`
	if err := os.WriteFile(p, []byte(schema), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := validateSchema(p, map[string]interface{}{"port": 9464.0}); err != nil {
		t.Errorf("valid values rejected: %v", err)
	}
	for _, bad := range []map[string]interface{}{{"port": 70000.0}, {"other": 1.0}} {
		if err := validateSchema(p, bad); err == nil || !strings.Contains(err.Error(), "schema") {
			t.Errorf("%v accepted (err %v)", bad, err)
		}
	}
	if err := validateSchema(filepath.Join(dir, "none.json"), map[string]interface{}{"x": 1.0}); err != nil {
		t.Errorf("a chart without a schema must render: %v", err)
	}
}
