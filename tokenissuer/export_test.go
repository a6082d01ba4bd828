package tokenissuer

// What the package's external tests may see of its insides.

// OccupyPasswordWork takes every place the password pool admits, as a
// flood of sign-ins would; release gives them back.
func (a *Accounts) OccupyPasswordWork() (release func(), running, admitted int) {
	p := a.passwords
	for range cap(p.admitted) {
		p.admitted <- struct{}{}
	}
	return func() {
		for range cap(p.admitted) {
			<-p.admitted
		}
	}, cap(p.running), cap(p.admitted)
}
