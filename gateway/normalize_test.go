package gateway

import "testing"

func TestNormalizeChat(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"messages":[{"role":"user","content":"hi"}]}`, `{"messages":[{"role":"user","content":{"text":"hi"}}]}`},
		{`{"messages":[{"content":[{"type":"text","text":"a"}]},{"content":null},{"role":"x"}]}`,
			`{"messages":[{"content":{"parts":{"parts":[{"type":"text","text":"a"}]}}},{"content":null},{"role":"x"}]}`},
		{`{"messages":[{"content":{"text":"typed"}}]}`, `{"messages":[{"content":{"text":"typed"}}]}`},
		{`{"stop":"END","tool_choice":"auto"}`, `{"stop":["END"],"tool_choice":{"mode":"auto"}}`},
		{`{"stop":["a"],"tool_choice":{"type":"function","function":{"name":"f"}}}`, `{"stop":["a"],"tool_choice":{"named":{"type":"function","function":{"name":"f"}}}}`},
		{`{"tool_choice":{"mode":"none"}}`, `{"tool_choice":{"mode":"none"}}`},
		{`{"content":"top-level content is not a message","x":{"messages":"y"}}`, `{"content":"top-level content is not a message","x":{"messages":"y"}}`},
		{"{\n \"messages\" : [ { \"content\" : \"sp\\\"aced\" } ] }", "{\n \"messages\" : [ { \"content\" : {\"text\":\"sp\\\"aced\"} } ] }"},
		{`{"m\u0065ssages":[{"content":"escaped key"}]}`, `{"m\u0065ssages":[{"content":{"text":"escaped key"}}]}`},
	}
	for _, tt := range tests {
		if got := string(normalizeChat(nil, []byte(tt.in))); got != tt.want {
			t.Errorf("normalizeChat(%s)\n got %s\nwant %s", tt.in, got, tt.want)
		}
	}
}

func TestNormalizeEmbedding(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"input":"a"}`, `{"input":{"texts":["a"]}}`},
		{`{"input":["a","b"]}`, `{"input":{"texts":["a","b"]}}`},
		{`{"input":[]}`, `{"input":{"texts":[]}}`},
		{`{"input":[1,2]}`, `{"input":{"tokens":[{"ids":[1,2]}]}}`},
		{`{"input":[[1,2],[3]]}`, `{"input":{"tokens":[{"ids":[1,2]},{"ids":[3]}]}}`},
		{`{"input":{"texts":["typed"]}}`, `{"input":{"texts":["typed"]}}`},
		{`{"input":{"x":1}}`, `{"input":{"texts":{"x":1}}}`},
		{`{"input":null,"model":"m"}`, `{"input":null,"model":"m"}`},
	}
	for _, tt := range tests {
		if got := string(normalizeEmbedding(nil, []byte(tt.in))); got != tt.want {
			t.Errorf("normalizeEmbedding(%s)\n got %s\nwant %s", tt.in, got, tt.want)
		}
	}
}
