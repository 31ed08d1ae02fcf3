package fatalreturn_test

import (
	"testing"

	"github.com/tbsim/tbsim/internal/analysis/fatalreturn"
	"golang.org/x/tools/go/analysis/analysistest"
)

func TestAnalyzer(t *testing.T) {
	analysistest.Run(t, analysistest.TestData(), fatalreturn.Analyzer, "b")
}
