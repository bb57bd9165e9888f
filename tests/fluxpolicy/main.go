// fluxpolicy picks the tag a Flux ImagePolicy selects, as image-reflector-controller does, for
// the tests' image-automation bot: Flux's own libraries decide (Masterminds/semver for semver
// ranges, Go's regexp for filterTags and the ImageRepository's exclusionList).
//
// stdin: {"policy": <ImagePolicy spec.policy>, "filterTags": <spec.filterTags>,
//         "exclusionList": [<ImageRepository spec.exclusionList>], "tags": [...]}
// stdout: {"latest": "<tag or empty>", "error": "<why none>"}
package main

import (
	"encoding/json"
	"os"
	"regexp"
	"sort"
	"strconv"

	"github.com/Masterminds/semver"
)

type request struct {
	Policy struct {
		Semver       *struct{ Range string } `json:"semver"`
		Alphabetical *struct{ Order string } `json:"alphabetical"`
		Numerical    *struct{ Order string } `json:"numerical"`
	} `json:"policy"`
	FilterTags *struct {
		Pattern string `json:"pattern"`
		Extract string `json:"extract"`
	} `json:"filterTags"`
	ExclusionList []string `json:"exclusionList"`
	Tags          []string `json:"tags"`
}

func answer(latest string, err error) {
	out := map[string]string{"latest": latest}
	if err != nil {
		out["error"] = err.Error()
	}
	_ = json.NewEncoder(os.Stdout).Encode(out)
}

func main() {
	var req request
	if err := json.NewDecoder(os.Stdin).Decode(&req); err != nil {
		answer("", err)
		return
	}
	// image-reflector-controller stores no tag that matches an exclusionList regex.
	var stored []string
	for _, tag := range req.Tags {
		excluded := false
		for _, expr := range req.ExclusionList {
			re, err := regexp.Compile(expr)
			if err != nil {
				answer("", err)
				return
			}
			if re.MatchString(tag) {
				excluded = true
			}
		}
		if !excluded {
			stored = append(stored, tag)
		}
	}
	// filterTags: keep matching tags; the policy orders the extracted values.
	values := map[string]string{}
	var candidates []string
	var filter *regexp.Regexp
	if req.FilterTags != nil && req.FilterTags.Pattern != "" {
		var err error
		if filter, err = regexp.Compile(req.FilterTags.Pattern); err != nil {
			answer("", err)
			return
		}
	}
	for _, tag := range stored {
		value := tag
		if filter != nil {
			match := filter.FindStringSubmatchIndex(tag)
			if match == nil {
				continue
			}
			if req.FilterTags.Extract != "" {
				value = string(filter.ExpandString(nil, req.FilterTags.Extract, tag, match))
			}
		}
		values[value] = tag
		candidates = append(candidates, value)
	}
	best := ""
	switch {
	case req.Policy.Semver != nil:
		constraint, err := semver.NewConstraint(req.Policy.Semver.Range)
		if err != nil {
			answer("", err)
			return
		}
		var top *semver.Version
		for _, value := range candidates {
			version, err := semver.NewVersion(value)
			if err != nil || !constraint.Check(version) {
				continue
			}
			if top == nil || version.GreaterThan(top) {
				top, best = version, value
			}
		}
	case req.Policy.Numerical != nil:
		var top float64
		found := false
		for _, value := range candidates {
			number, err := strconv.ParseFloat(value, 64)
			if err != nil {
				continue
			}
			desc := req.Policy.Numerical.Order == "desc"
			if !found || (!desc && number > top) || (desc && number < top) {
				top, best, found = number, value, true
			}
		}
	default:
		sort.Strings(candidates)
		if len(candidates) > 0 {
			best = candidates[len(candidates)-1]
			if req.Policy.Alphabetical != nil && req.Policy.Alphabetical.Order == "desc" {
				best = candidates[0]
			}
		}
	}
	answer(values[best], nil)
}
