"""Stand-in for `nft`, in the calls the register and ready steps make on the agent guard's
table (the real table and its rules are tested with the real nft in tests/hosts). The table is
there unless $STATE/no-agent-guard; the set `joiners` is $STATE/joiners/<address> (holding
its timeout). nft 1.0: `get element` and `delete element` of an absent element fail."""

NFT_STUBS = {
    "nft": """
case "$1 $2 $3 $4" in
  "list table inet hybrid_ai_agent") [ ! -e "$STATE/no-agent-guard" ];;
  "add element inet hybrid_ai_agent"|"get element inet hybrid_ai_agent"|"delete element inet hybrid_ai_agent")
    [ ! -e "$STATE/no-agent-guard" ] && [ "$5" = joiners ] || { echo "Error: No such file or directory" >&2; exit 1; }
    read -r _ ip rest <<< "$6"; mkdir -p "$STATE/joiners"
    case $1 in
      add) echo "${rest% \\}}" > "$STATE/joiners/$ip";;
      get) [ -e "$STATE/joiners/$ip" ] || { echo "Error: Could not process rule: No such file or directory" >&2; exit 1; };;
      delete) rm "$STATE/joiners/$ip" 2>/dev/null || { echo "Error: Could not process rule: No such file or directory" >&2; exit 1; };;
    esac;;
  *) echo "nft stand-in: not modelled: $*" >&2; exit 2;;
esac""",
}
