package kserve

import (
	"bytes"
	"errors"
	"testing"

	pb "github.com/switchyard/switchyard/gen/go/kserve/inference"
	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/pbconv"
	"github.com/switchyard/switchyard/internal/provider"
	"github.com/switchyard/switchyard/internal/provider/kserve/kservetest"
)

// FuzzTensors decodes fuzzed output tensors the way answers are read: the generated text and
// token count (decodeText) and an embedding matrix (fp32Elems). sel picks the data types and
// whether contents are raw or typed. Nothing may panic; decodeText fails only with a
// KindUpstream *llm.Error naming the provider; raw BYTES elements and raw FP32 values account for
// every byte of the tensor.
func FuzzTensors(f *testing.F) {
	f.Add(uint8(0), kservetest.RawBytes("Hello"), []byte{5, 0, 0, 0}, kservetest.RawFP32(0.5, -1))
	f.Add(uint8(0b0100), kservetest.RawBytes("a", "bc"), []byte{1, 0, 0, 0, 0, 0, 0, 0}, []byte{1, 2, 3})
	f.Add(uint8(0b110000), []byte("typed"), []byte{7}, kservetest.RawFP32(1, 2, 3))
	f.Add(uint8(0b1000000), []byte{255, 255, 255, 255}, []byte{}, []byte{})
	p := &Provider{cfg: provider.Config{Name: "fz"}}
	mc := defaults()
	mc.tokensOut = "tokens"
	textTypes := [4]string{typeBytes, typeBytes, typeBytes, typeFP32}
	tokenTypes := [4]string{typeInt32, "INT64", typeBytes, ""}
	f.Fuzz(func(t *testing.T, sel uint8, text, tokens, emb []byte) {
		typed := sel&(1<<4) != 0
		resp := &pb.ModelInferResponse{}
		add := func(name, dtype string, raw []byte, contents *pb.InferTensorContents) {
			resp.Outputs = append(resp.Outputs, &pb.ModelInferResponse_InferOutputTensor{Name: name, Datatype: dtype, Contents: contents})
			if !typed {
				resp.RawOutputContents = append(resp.RawOutputContents, raw)
			}
		}
		add(mc.textOut, textTypes[sel%4], text, &pb.InferTensorContents{BytesContents: bytes.Fields(text)})
		if tt := tokenTypes[(sel>>2)%4]; tt != "" {
			add(mc.tokensOut, tt, tokens, &pb.InferTensorContents{IntContents: []int32{int32(len(tokens))}})
		}
		add(mc.embedOut, typeFP32, emb, &pb.InferTensorContents{Fp32Contents: []float32{float32(len(emb))}})
		if sel&(1<<6) != 0 && len(resp.RawOutputContents) > 0 { // fewer raw contents than outputs
			resp.RawOutputContents = resp.RawOutputContents[:len(resp.RawOutputContents)-1]
		}
		if _, _, err := p.decodeText(&mc, resp); err != nil {
			var e *llm.Error
			if !errors.As(err, &e) || e.Kind != llm.KindUpstream || e.Provider != "fz" {
				t.Fatalf("decodeText: %#v", err)
			}
		}
		o, raw, _ := output(resp, mc.textOut)
		if elems, err := bytesElems(o, raw); err == nil && raw != nil {
			n := 0
			for _, e := range elems {
				n += 4 + len(e)
			}
			if n != len(raw) {
				t.Fatalf("BYTES elements %q account for %d of %d bytes", elems, n, len(raw))
			}
		}
		o, raw, _ = output(resp, mc.embedOut)
		if v, err := fp32Elems(o, raw); err == nil && raw != nil && !bytes.Equal(pbconv.Float32Bytes(v), raw) {
			t.Fatalf("FP32 values %v do not re-encode to %x", v, raw)
		}
	})
}
