package scenario

import (
	"encoding/json"
	"sort"

	"github.com/tbsim/tbsim/firmware/tbapi"
)

// toMembers turns YAML values into attribute members (sorted by key).
func toMembers(m map[string]any) ([]tbapi.Member, error) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []tbapi.Member
	for _, k := range keys {
		v, err := toValue(m[k])
		if err != nil {
			return nil, err
		}
		out = append(out, tbapi.Member{Key: k, Value: v})
	}
	return out, nil
}

func toValue(x any) (tbapi.Value, error) {
	if x == nil {
		return tbapi.Value{Kind: tbapi.Object}, nil
	}
	b, err := json.Marshal(x)
	if err != nil {
		return tbapi.Value{}, err
	}
	return tbapi.Parse(b)
}
