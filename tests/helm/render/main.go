// render: `helm template` for machines without helm.
//
// It loads a chart directory the way helm does (Chart.yaml, values.yaml
// deep-merged with -f files and --set values, values.schema.json enforced,
// kubeVersion checked), renders every template with the engine in engine.go
// and prints the manifests as YAML documents headed by "# Source:" comments,
// or as JSON for test programs. Only Debian-packaged Go libraries are used
// (sprig, yaml.v2, gojsonschema), so it builds offline in GOPATH mode; see
// scripts/check-helm.
//
//	render -chart helm/herald [-f override.yaml]... [-set key=value]...
//	       [-name herald] [-namespace default] [-kube-version 1.29.0]
//	       [-api-versions monitoring.coreos.com/v1,...] [-output yaml|json]
//	       [-notes] [-skip-schema-validation]
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/Masterminds/semver"
	"github.com/xeipuuv/gojsonschema"
	yaml "gopkg.in/yaml.v2"
)

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

// The API groups a stock cluster serves; -api-versions adds CRD groups.
var defaultAPIVersions = []string{
	"v1", "apps/v1", "batch/v1", "autoscaling/v1", "autoscaling/v2",
	"policy/v1", "networking.k8s.io/v1", "rbac.authorization.k8s.io/v1",
	"storage.k8s.io/v1", "coordination.k8s.io/v1", "discovery.k8s.io/v1",
	"apiextensions.k8s.io/v1", "admissionregistration.k8s.io/v1",
	"scheduling.k8s.io/v1", "node.k8s.io/v1", "events.k8s.io/v1",
}

// helm's install order (pkg/releaseutil/kind_sorter.go); unknown kinds last.
var installOrder = []string{
	"PriorityClass", "Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange",
	"PodSecurityPolicy", "PodDisruptionBudget", "ServiceAccount", "Secret",
	"SecretList", "ConfigMap", "StorageClass", "PersistentVolume",
	"PersistentVolumeClaim", "CustomResourceDefinition", "ClusterRole",
	"ClusterRoleList", "ClusterRoleBinding", "ClusterRoleBindingList", "Role",
	"RoleList", "RoleBinding", "RoleBindingList", "Service", "DaemonSet", "Pod",
	"ReplicationController", "ReplicaSet", "Deployment", "HorizontalPodAutoscaler",
	"StatefulSet", "Job", "CronJob", "IngressClass", "Ingress", "APIService",
}

type manifest struct {
	Source  string      `json:"source"`
	Kind    string      `json:"kind"`
	Name    string      `json:"name"`
	Content string      `json:"content"`
	Object  interface{} `json:"object"`
}

func main() {
	var valueFiles, sets, apiVersions multiFlag
	chartDir := flag.String("chart", "", "chart directory (required)")
	flag.Var(&valueFiles, "f", "values file merged over values.yaml (repeatable)")
	flag.Var(&sets, "set", "key=value merged over the values (repeatable; escape dots in keys with \\.)")
	releaseName := flag.String("name", "herald", "release name")
	namespace := flag.String("namespace", "default", "release namespace")
	kubeVer := flag.String("kube-version", "1.29.0", "Kubernetes version for .Capabilities")
	flag.Var(&apiVersions, "api-versions", "extra API versions for .Capabilities (repeatable, comma-separated)")
	output := flag.String("output", "yaml", "yaml or json")
	notes := flag.Bool("notes", false, "also print the rendered NOTES.txt (yaml output)")
	skipSchema := flag.Bool("skip-schema-validation", false, "do not validate values against values.schema.json")
	flag.Parse()

	if *chartDir == "" || flag.NArg() != 0 || (*output != "yaml" && *output != "json") {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*chartDir, valueFiles, sets, *releaseName, *namespace, *kubeVer,
		apiVersions, *output, *notes, *skipSchema); err != nil {
		fmt.Fprintf(os.Stderr, "Error: %v\n", err)
		os.Exit(1)
	}
}

func run(chartDir string, valueFiles, sets []string, releaseName, namespace, kubeVer string,
	extraAPIVersions []string, output string, withNotes, skipSchema bool) error {
	meta, err := loadChartYAML(filepath.Join(chartDir, "Chart.yaml"))
	if err != nil {
		return err
	}
	kv, err := checkKubeVersion(meta, kubeVer)
	if err != nil {
		return err
	}

	values, err := readValuesFile(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		return err
	}
	for _, f := range valueFiles {
		override, err := readValuesFile(f)
		if err != nil {
			return err
		}
		values = coalesce(override, values)
	}
	for _, s := range sets {
		override, err := parseSet(s)
		if err != nil {
			return err
		}
		values = coalesce(override, values)
	}
	if !skipSchema {
		if err := validateSchema(filepath.Join(chartDir, "values.schema.json"), values); err != nil {
			return err
		}
	}

	templates, files, err := loadChartFiles(chartDir, meta.Name)
	if err != nil {
		return err
	}
	apis := append(versionSet{}, defaultAPIVersions...)
	for _, a := range extraAPIVersions {
		for _, x := range strings.Split(a, ",") {
			if x = strings.TrimSpace(x); x != "" {
				apis = append(apis, x)
			}
		}
	}
	top := map[string]interface{}{
		"Values": values,
		"Chart":  meta,
		"Release": map[string]interface{}{
			"Name": releaseName, "Namespace": namespace, "Revision": 1,
			"IsUpgrade": false, "IsInstall": true, "Service": "Helm",
		},
		"Capabilities": &capabilities{
			KubeVersion: kv,
			APIVersions: apis,
			HelmVersion: map[string]string{"version": "v3"},
		},
		"Files": files,
	}
	rendered, err := render(templates, top)
	if err != nil {
		return err
	}

	var manifests []manifest
	notes := ""
	for _, r := range rendered {
		if strings.HasSuffix(r.Name, "/NOTES.txt") {
			notes = r.Content
			continue
		}
		docs, err := splitManifests(r)
		if err != nil {
			return err
		}
		manifests = append(manifests, docs...)
	}
	sortByInstallOrder(manifests)

	if output == "json" {
		out := map[string]interface{}{"manifests": manifests, "notes": notes}
		if manifests == nil {
			out["manifests"] = []manifest{}
		}
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	for _, m := range manifests {
		fmt.Printf("---\n# Source: %s\n%s\n", m.Source, m.Content)
	}
	if withNotes {
		fmt.Printf("\nNOTES:\n%s\n", notes)
	}
	return nil
}

func loadChartYAML(p string) (*chartMetadata, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("cannot read chart metadata: %w", err)
	}
	var meta chartMetadata
	if err := yaml.UnmarshalStrict(data, &meta); err != nil {
		return nil, fmt.Errorf("%q: %w", p, err)
	}
	if meta.APIVersion != "v2" {
		return nil, fmt.Errorf("%q: apiVersion must be v2, not %q", p, meta.APIVersion)
	}
	if meta.Name == "" || meta.Version == "" {
		return nil, fmt.Errorf("%q: name and version are required", p)
	}
	if _, err := semver.StrictNewVersion(meta.Version); err != nil {
		return nil, fmt.Errorf("%q: version %q is not SemVer 2: %v", p, meta.Version, err)
	}
	return &meta, nil
}

func checkKubeVersion(meta *chartMetadata, v string) (kubeVersion, error) {
	sv, err := semver.NewVersion(v)
	if err != nil {
		return kubeVersion{}, fmt.Errorf("invalid -kube-version %q: %v", v, err)
	}
	kv := kubeVersion{
		Version: "v" + sv.String(),
		Major:   strconv.FormatUint(sv.Major(), 10),
		Minor:   strconv.FormatUint(sv.Minor(), 10),
	}
	if meta.KubeVersion != "" {
		c, err := semver.NewConstraint(meta.KubeVersion)
		if err != nil {
			return kv, fmt.Errorf("chart kubeVersion %q: %v", meta.KubeVersion, err)
		}
		if !c.Check(sv) {
			return kv, fmt.Errorf("chart requires kubeVersion: %s which is incompatible with Kubernetes %s",
				meta.KubeVersion, kv.Version)
		}
	}
	return kv, nil
}

func readValuesFile(p string) (map[string]interface{}, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("cannot read values: %w", err)
	}
	vals := map[string]interface{}{}
	if err := yamlToJSONValue(data, &vals); err != nil {
		return nil, fmt.Errorf("failed to parse %s: %w", p, err)
	}
	if vals == nil {
		vals = map[string]interface{}{}
	}
	return vals, nil
}

// coalesce merges src over dst the way helm merges user values over the
// chart's: maps merge key by key, anything else replaces, and a null in src
// deletes the key.
func coalesce(src, dst map[string]interface{}) map[string]interface{} {
	out := make(map[string]interface{}, len(dst))
	for k, v := range dst {
		out[k] = v
	}
	for k, v := range src {
		if v == nil {
			delete(out, k)
			continue
		}
		sm, sok := v.(map[string]interface{})
		dm, dok := out[k].(map[string]interface{})
		if sok && dok {
			out[k] = coalesce(sm, dm)
		} else {
			out[k] = v
		}
	}
	return out
}

// parseSet turns "a.b\.c=v" into {"a": {"b.c": v}}; v is typed like
// helm's --set (null, booleans, integers, else a string).
func parseSet(s string) (map[string]interface{}, error) {
	eq := strings.Index(s, "=")
	if eq <= 0 {
		return nil, fmt.Errorf("--set %q: expected key=value", s)
	}
	var path []string
	var cur strings.Builder
	key := s[:eq]
	for i := 0; i < len(key); i++ {
		switch {
		case key[i] == '\\' && i+1 < len(key) && key[i+1] == '.':
			cur.WriteByte('.')
			i++
		case key[i] == '.':
			path = append(path, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(key[i])
		}
	}
	path = append(path, cur.String())

	raw := s[eq+1:]
	var val interface{} = raw
	switch {
	case raw == "null":
		val = nil
	case raw == "true" || raw == "false":
		val = raw == "true"
	default:
		if n, err := strconv.ParseInt(raw, 10, 64); err == nil && (raw == "0" || !strings.HasPrefix(raw, "0")) {
			val = n
		}
	}
	out := map[string]interface{}{}
	m := out
	for i, p := range path {
		if p == "" {
			return nil, fmt.Errorf("--set %q: empty key segment", s)
		}
		if i == len(path)-1 {
			m[p] = val
		} else {
			next := map[string]interface{}{}
			m[p] = next
			m = next
		}
	}
	return out, nil
}

func validateSchema(p string, values map[string]interface{}) error {
	schema, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	doc, err := json.Marshal(values)
	if err != nil {
		return err
	}
	res, err := gojsonschema.Validate(gojsonschema.NewBytesLoader(schema), gojsonschema.NewBytesLoader(doc))
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	if res.Valid() {
		return nil
	}
	var b strings.Builder
	b.WriteString("values don't meet the specifications of the schema(s) in the following chart(s):\n")
	for _, e := range res.Errors() {
		fmt.Fprintf(&b, "- %s\n", e)
	}
	return errors.New(strings.TrimSuffix(b.String(), "\n"))
}

// loadChartFiles returns the templates (keyed "<chart>/templates/...") and
// .Files: every other file except the chart's metadata.
func loadChartFiles(chartDir, chartName string) (map[string]string, chartFiles, error) {
	templates := map[string]string{}
	files := chartFiles{}
	err := filepath.WalkDir(chartDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(chartDir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel == "charts" {
				return fmt.Errorf("subcharts (charts/) are not supported by this renderer")
			}
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		switch {
		case strings.HasPrefix(rel, "templates/"):
			templates[chartName+"/"+rel] = string(data)
		case rel == "Chart.yaml" || rel == "values.yaml" || rel == "values.schema.json" ||
			rel == "Chart.lock" || rel == ".helmignore":
		default:
			files[rel] = data
		}
		return nil
	})
	return templates, files, err
}

var sep = regexp.MustCompile("(?:^|\\s*\n)---\\s*")

// splitManifests cuts one template's output into its YAML documents,
// drops empty ones and checks that each is an object with apiVersion and
// kind (helm stops with "YAML parse error" on anything else).
func splitManifests(r renderedFile) ([]manifest, error) {
	var out []manifest
	for _, doc := range sep.Split(r.Content, -1) {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		var obj interface{}
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			return nil, fmt.Errorf("YAML parse error on %s: %v\n--- rendered ---\n%s", r.Name, err, doc)
		}
		obj = toJSONCompatible(obj)
		if obj == nil {
			continue // only comments
		}
		m, ok := obj.(map[string]interface{})
		if !ok {
			return nil, fmt.Errorf("%s: a manifest must be a YAML mapping", r.Name)
		}
		kind, _ := m["kind"].(string)
		api, _ := m["apiVersion"].(string)
		if kind == "" || api == "" {
			return nil, fmt.Errorf("%s: manifest without apiVersion or kind", r.Name)
		}
		name := ""
		if md, ok := m["metadata"].(map[string]interface{}); ok {
			name, _ = md["name"].(string)
		}
		out = append(out, manifest{
			Source: r.Name, Kind: kind, Name: name,
			Content: strings.TrimSpace(doc), Object: m,
		})
	}
	return out, nil
}

func sortByInstallOrder(ms []manifest) {
	rank := map[string]int{}
	for i, k := range installOrder {
		rank[k] = i
	}
	order := func(k string) int {
		if r, ok := rank[k]; ok {
			return r
		}
		return len(installOrder)
	}
	sort.SliceStable(ms, func(i, j int) bool {
		oi, oj := order(ms[i].Kind), order(ms[j].Kind)
		if oi != oj {
			return oi < oj
		}
		if ms[i].Kind != ms[j].Kind {
			return ms[i].Kind < ms[j].Kind
		}
		return ms[i].Name < ms[j].Name
	})
}
