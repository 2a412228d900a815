#!/bin/sh
# Example hook: replace with your own check.
echo "switch-dns: $DRPLAN_GROUP on $DRPLAN_SITE ($DRPLAN_MACHINES)"
