package lwm2m

import (
	"slices"
	"testing"

	"github.com/fotahub/fota/lwm2m/model"
)

func TestFormatChoice(t *testing.T) {
	root := func(ct string) []Link {
		l := Link{Path: "/", Attrs: []LinkAttr{{Key: "rt", Value: "oma.lwm2m"}}}
		if ct != "" {
			l.Attrs = append(l.Attrs, LinkAttr{Key: "ct", Value: ct})
		}
		return []Link{l, {Path: "/3/0"}}
	}
	cases := []struct {
		version, ct     string
		node, composite int
	}{
		{"1.0", "", model.ContentFormatTLV, model.ContentFormatSenMLCBOR},
		{"1.0", "11543", model.ContentFormatLwM2MJSON, model.ContentFormatSenMLCBOR},
		{"1.1", "", model.ContentFormatTLV, model.ContentFormatSenMLCBOR},
		{"1.1", "60 110 11542", model.ContentFormatTLV, model.ContentFormatSenMLJSON},
		{"1.1", "110 112 11542", model.ContentFormatSenMLCBOR, model.ContentFormatSenMLCBOR},
		{"1.1", "11544 112", model.ContentFormatSenMLCBOR, model.ContentFormatSenMLCBOR}, // LwM2M CBOR is 1.2 only
		{"1.2", "11544 112", model.ContentFormatLwM2MCBOR, model.ContentFormatSenMLCBOR},
	}
	for _, tc := range cases {
		reg := Registration{Version: tc.version, RootPath: "/", Objects: root(tc.ct)}
		if got := nodeFormat(&reg); got != tc.node {
			t.Errorf("%s ct=%q: node format %d, want %d", tc.version, tc.ct, got, tc.node)
		}
		if got := compositeFormat(&reg); got != tc.composite {
			t.Errorf("%s ct=%q: composite format %d, want %d", tc.version, tc.ct, got, tc.composite)
		}
	}
	reg := Registration{RootPath: "/lwm2m", Objects: []Link{{Path: "/lwm2m", Attrs: []LinkAttr{{Key: "ct", Value: "112"}}}}}
	if got := reg.Formats(); !slices.Equal(got, []int{112}) {
		t.Errorf("formats on an alternate root path: %v", got)
	}
	op := Op{Kind: OpRead, Path: model.ObjectInstancePath(3, 0)}
	req, err := op.request(&reg)
	if err != nil || req.Path != "/lwm2m/3/0" || req.Accept != model.ContentFormatSenMLCBOR {
		t.Errorf("read on an alternate root path: %s accept %d, %v", req.Path, req.Accept, err)
	}
}

func TestOpValidate(t *testing.T) {
	bad := []Op{
		{Kind: OpRead},
		{Kind: OpWrite, Path: model.ResourcePath(1, 0, 1)},
		{Kind: OpWrite, Path: model.ObjectPath(1), Node: &model.Object{ID: 1}},
		{Kind: OpExecute, Path: model.ObjectInstancePath(3, 0)},
		{Kind: OpDelete, Path: model.ResourcePath(3, 0, 1)},
		{Kind: OpCreate, Path: model.ResourcePath(1, 0, 1), Node: &model.ObjectInstance{}},
		{Kind: OpWriteAttributes, Path: model.ResourcePath(3, 0, 9)},
		{Kind: OpWriteAttributes, Path: model.ResourcePath(3, 0, 9), Attributes: []LinkAttr{{Key: "bogus", Value: "1"}}},
		{Kind: OpWriteAttributes, Path: model.ResourcePath(3, 0, 9), Attributes: []LinkAttr{{Key: "pmin", Value: "-1"}}},
		{Kind: OpReadComposite},
		{Kind: 99},
	}
	for _, op := range bad {
		if err := op.validate(); err == nil {
			t.Errorf("%s %s %+v passed validation", op.Kind, op.Path, op)
		}
	}
	good := Op{Kind: OpWriteAttributes, Path: model.ResourcePath(3, 0, 9),
		Attributes: []LinkAttr{{Key: "gt", Value: "20.5"}, {Key: "pmax"}}}
	if err := good.validate(); err != nil {
		t.Error(err)
	}
	req, _ := good.request(&Registration{})
	if !slices.Equal(req.Query, []string{"gt=20.5", "pmax"}) || req.Payload != nil {
		t.Errorf("write-attributes request %+v", req)
	}
}
