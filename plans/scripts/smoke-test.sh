#!/bin/sh
# Example hook: replace with your own check.
echo "smoke-test: $DRPLAN_GROUP on $DRPLAN_SITE ($DRPLAN_MACHINES)"
