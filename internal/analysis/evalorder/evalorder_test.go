package evalorder_test

import (
	"testing"

	"github.com/tbsim/tbsim/internal/analysis/evalorder"
	"golang.org/x/tools/go/analysis/analysistest"
)

func TestAnalyzer(t *testing.T) {
	analysistest.Run(t, analysistest.TestData(), evalorder.Analyzer, "a")
}
