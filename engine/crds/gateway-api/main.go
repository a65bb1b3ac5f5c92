// Command gateway-api-crds writes Gateway API's standard-channel CRDs, one file per CRD, into
// the directory given by -out. The rules of the standard channel are those of upstream's CRD
// generator at the pinned version (tools/generator in kubernetes-sigs/gateway-api): only the
// standard kinds; alpha versions not served; fields and validations marked in their doc comments
// with <gateway:experimental...> tags left out, <gateway:standard:validation:...> tags applied;
// every <gateway:...> tag removed from the descriptions.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"golang.org/x/tools/go/packages"
	apiext "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/controller-tools/pkg/crd"
	"sigs.k8s.io/controller-tools/pkg/loader"
	"sigs.k8s.io/controller-tools/pkg/markers"
	"sigs.k8s.io/gateway-api/pkg/consts"
	"sigs.k8s.io/yaml"
)

// The kinds of the standard channel at v1.5.1 (its config/crd/standard).
var standard = map[string]bool{
	"GatewayClass": true, "Gateway": true, "HTTPRoute": true, "GRPCRoute": true,
	"ReferenceGrant": true, "BackendTLSPolicy": true, "ListenerSet": true, "TLSRoute": true,
}

const channel = "standard"

func main() {
	out := flag.String("out", "", "directory to write the CRDs into")
	flag.Parse()
	if *out == "" {
		log.Fatal("-out is required")
	}
	roots, err := loader.LoadRoots(
		"k8s.io/apimachinery/pkg/runtime/schema", // parses the generated register functions
		"sigs.k8s.io/gateway-api/apis/v1",
		"sigs.k8s.io/gateway-api/apis/v1beta1",
		"sigs.k8s.io/gateway-api/apis/v1alpha2",
		"sigs.k8s.io/gateway-api/apis/v1alpha3",
		"sigs.k8s.io/gateway-api/apisx/v1alpha1",
	)
	if err != nil {
		log.Fatalf("loading the API packages: %v", err)
	}
	generator := &crd.Generator{}
	parser := &crd.Parser{
		Collector: &markers.Collector{Registry: &markers.Registry{}},
		Checker:   &loader.TypeChecker{NodeFilters: []loader.NodeFilter{generator.CheckFilter()}},
	}
	if err := generator.RegisterMarkers(parser.Collector.Registry); err != nil {
		log.Fatal(err)
	}
	if err := registerBoundsOnAliases(parser.Collector.Registry); err != nil {
		log.Fatal(err)
	}
	crd.AddKnownTypes(parser)
	for _, root := range roots {
		parser.NeedPackage(root)
	}
	metav1 := crd.FindMetav1(roots)
	if metav1 == nil {
		log.Fatal("no API types found (nothing imports metav1)")
	}
	kinds := crd.FindKubeKinds(parser, metav1)
	sort.Slice(kinds, func(i, j int) bool { return kinds[i].Kind < kinds[j].Kind })
	written := 0
	for _, kind := range kinds {
		if !standard[kind.Kind] {
			continue
		}
		parser.NeedCRDFor(kind, nil)
		generated := parser.CustomResourceDefinitions[kind]
		def := generated.DeepCopy()
		if def.Annotations == nil {
			def.Annotations = map[string]string{}
		}
		def.Annotations[consts.BundleVersionAnnotation] = consts.BundleVersion
		def.Annotations[consts.ChannelAnnotation] = channel
		def.Annotations[apiext.KubeAPIApprovedAnnotation] = consts.ApprovalLink
		crd.FixTopLevelMetadata(*def)
		for i := range def.Spec.Versions {
			version := &def.Spec.Versions[i]
			if strings.Contains(version.Name, "alpha") {
				version.Served = false
			}
			schema := version.Schema.OpenAPIV3Schema
			schema.Properties = forChannel(schema.Properties)
		}
		converted, err := crd.AsVersion(*def, apiext.SchemeGroupVersion)
		if err != nil {
			log.Fatalf("%s: %v", kind, err)
		}
		manifest, err := yaml.Marshal(converted)
		if err != nil {
			log.Fatalf("%s: %v", kind, err)
		}
		name := fmt.Sprintf("%s_%s.yaml", def.Spec.Group, def.Spec.Names.Plural)
		if err := os.WriteFile(filepath.Join(*out, name), manifest, 0o644); err != nil {
			log.Fatal(err)
		}
		written++
	}
	if loader.PrintErrors(roots, packages.TypeError) {
		log.Fatal("the API packages did not type-check")
	}
	if written != len(standard) {
		log.Fatalf("wrote %d CRDs, the standard channel has %d kinds", written, len(standard))
	}
}

// forChannel applies the channel's rules to each property, dropping experimental ones.
func forChannel(properties map[string]apiext.JSONSchemaProps) map[string]apiext.JSONSchemaProps {
	for name, property := range properties {
		if kept := propertyForChannel(name, property); kept != nil {
			properties[name] = *kept
		} else {
			delete(properties, name)
		}
	}
	return properties
}

var (
	enumTag    = regexp.MustCompile(`<gateway:` + channel + `:validation:Enum=([A-Za-z;]*)>`)
	celTag     = regexp.MustCompile(`<gateway:` + channel + `:validation:XValidation:message="([^"]*)",rule="([^"]*)">`)
	patternTag = regexp.MustCompile("<gateway:" + channel + ":validation:Pattern=`([^`]*)`")
	anyTag     = regexp.MustCompile(`<gateway:.*>`)
	manyBreaks = regexp.MustCompile(`\n\n\n+`)
	ipAddress  = []apiext.JSON{{Raw: []byte(`"IPAddress"`)}}
)

func propertyForChannel(name string, p apiext.JSONSchemaProps) *apiext.JSONSchemaProps {
	text := p.Description
	if strings.Contains(text, "<gateway:validateIPAddress>") {
		// An address of type IPAddress must be an IPv4 or IPv6 address.
		p.Items.Schema.OneOf = []apiext.JSONSchemaProps{
			{Properties: map[string]apiext.JSONSchemaProps{
				"type":  {Enum: ipAddress},
				"value": {AnyOf: []apiext.JSONSchemaProps{{Format: "ipv4"}, {Format: "ipv6"}}},
			}},
			{Properties: map[string]apiext.JSONSchemaProps{
				"type": {Not: &apiext.JSONSchemaProps{Enum: ipAddress}},
			}},
		}
	}
	if strings.Contains(text, "<gateway:experimental>") {
		return nil
	}
	if p.Format == "date-time" {
		p.Type = "string" // controller-gen types metav1.Time as an object here
	}
	tags := strings.Count(text, "<gateway:"+channel+":validation:")
	applied := 0
	for _, m := range enumTag.FindAllStringSubmatch(text, -1) {
		p.Enum = nil
		for _, value := range strings.Split(m[1], ";") {
			p.Enum = append(p.Enum, apiext.JSON{Raw: []byte(`"` + value + `"`)})
		}
		applied++
	}
	for _, m := range celTag.FindAllStringSubmatch(text, -1) {
		p.XValidations = append(p.XValidations, apiext.ValidationRule{Message: m[1], Rule: m[2]})
		applied++
	}
	if m := patternTag.FindAllStringSubmatch(text, -1); len(m) == 1 && p.Pattern == "" {
		p.Pattern = m[0][1]
		applied++
	}
	if applied < tags {
		log.Fatalf("%s: %d of its %d %s validation tags could not be applied", name, tags-applied, tags, channel)
	}
	p.Description = describe(text)
	if len(p.Properties) > 0 {
		p.Properties = forChannel(p.Properties)
	} else if p.Items != nil && p.Items.Schema != nil {
		p.Items.Schema = propertyForChannel(name, *p.Items.Schema)
	}
	return &p
}

// describe removes what the standard channel's descriptions leave out, and every tag.
func describe(text string) string {
	text = cut(text, "gateway:experimental:description", "\n\n")
	text = cut(text, "gateway:util:excludeFromCRD", "\n\n\n")
	text = anyTag.ReplaceAllLiteralString(text, "")
	text = manyBreaks.ReplaceAllString(text, "\n\n\n")
	return strings.Trim(text, "\n")
}

// cut replaces each <tag>...</tag> block, with the line breaks around it, by with.
func cut(text, tag, with string) string {
	open, closing := "<"+tag+">", "</"+tag+">"
	if !strings.Contains(text, open) {
		return text
	}
	block := regexp.MustCompile(`\n*` + regexp.QuoteMeta(open) + `(?s:.*?)` + regexp.QuoteMeta(closing) + `\n*`)
	return block.ReplaceAllString(text, with)
}

// A field's minimum and maximum: controller-tools' own markers of these mishandle fields whose
// type is an alias, so upstream's generator registers these in their place.
type minimum float64
type maximum float64

func (m minimum) ApplyToSchema(schema *apiext.JSONSchemaProps) error {
	value := float64(m)
	schema.Minimum = &value
	return nil
}

func (m maximum) ApplyToSchema(schema *apiext.JSONSchemaProps) error {
	value := float64(m)
	schema.Maximum = &value
	return nil
}

func registerBoundsOnAliases(registry *markers.Registry) error {
	for name, output := range map[string]interface{}{
		"kubebuilder:validation:Minimum": minimum(0),
		"kubebuilder:validation:Maximum": maximum(0),
	} {
		def, err := markers.MakeDefinition(name, markers.DescribesField, output)
		if err != nil {
			return err
		}
		if err := registry.Register(def); err != nil {
			return err
		}
	}
	return nil
}
