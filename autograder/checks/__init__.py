"""The generic check library every assignment's checks use (`support`: Checker, seeded inputs, comparison;
`behaviour`: contract and gradient checks), and the grader's own pytest settings (`settings`, pytest.ini)."""
