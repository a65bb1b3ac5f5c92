"""hybrid-ai: `pulumi up` builds the stack described in Pulumi.<stack>.yaml."""

from stacks.program import main

main()
