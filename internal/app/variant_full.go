//go:build !edge

package app

import (
	"github.com/switchyard/switchyard/internal/provider"
	"github.com/switchyard/switchyard/internal/provider/bedrock"
	"github.com/switchyard/switchyard/internal/provider/kserve"
)

// buildVariant names this build: "full" (every provider type and backend) or "edge" (built with
// -tags edge: variant_edge.go lists what it leaves out; docs/edge-build.md).
const buildVariant = "full"

// leftOut is empty in the full build: it has everything.
var leftOut edgeLeftOut

// registerFullOnly registers the provider types the edge build leaves out.
func registerFullOnly(reg *provider.Registry) {
	reg.Register("bedrock", bedrock.New) // AWS Bedrock runtime (Converse, InvokeModel embeddings); pulls in the AWS SDK
	reg.Register("kserve", kserve.New)   // KServe v2 / Triton inference protocol (TensorRT-LLM)
}
